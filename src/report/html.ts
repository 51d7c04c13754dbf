/**
 * The report as one self-contained HTML file: the summary table (sortable), and per
 * connection its limit verdict bar and four uPlot charts (RTT, cwnd, rates, bytes and
 * retransmissions). uPlot (MIT, from the `uplot` npm package) and the data are inlined, so
 * the file opens without network access. Series are decimated to at most
 * {@link MAX_CHART_POINTS} per connection, so 1,000 connections and a million points make a
 * file of a few tens of MB whose charts are drawn as they scroll into view.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import type { AnalyzedConnection, SeriesField } from './analyze.js'

/** Points per series per connection in the charts. */
export const MAX_CHART_POINTS = 600
/** Up to this many connections, every chart is drawn at load; beyond, when scrolled into view. */
export const EAGER_CHARTS = 50

const UINT32_INF = 0x7fffffff

function uplotAssets(): { js: string; css: string } {
  const req = createRequire(import.meta.url)
  const dir = req.resolve('uplot/dist/uPlot.iife.min.js').replace(/uPlot\.iife\.min\.js$/, '')
  return { js: readFileSync(`${dir}uPlot.iife.min.js`, 'utf8'), css: readFileSync(`${dir}uPlot.min.css`, 'utf8') }
}

/** Indexes kept when thinning `n` points to at most `max` (evenly spaced, always the last). */
function keep(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i)
  const step = n / max
  const out: number[] = []
  for (let k = 0; k < max - 1; k++) out.push(Math.floor(k * step))
  out.push(n - 1)
  return out
}

function chartData(c: AnalyzedConnection): Record<string, (number | null)[]> {
  const s = c.series
  const idx = keep(s.time.length, MAX_CHART_POINTS)
  const t0 = s.time[0] ?? 0
  const pick = (f: SeriesField, scale = 1, cap = Infinity): (number | null)[] =>
    idx.map((i) => {
      const v = s[f][i] as number
      return Number.isFinite(v) && v < cap ? Number((v / scale).toPrecision(7)) : null
    })
  return {
    t: idx.map((i) => Math.round(((s.time[i] as number) - t0)) / 1000),
    rtt: pick('rtt', 1000),
    minRtt: pick('minRtt', 1000, 0xffffffff),
    cwnd: pick('sndCwnd'),
    ssthresh: pick('sndSsthresh', 1, UINT32_INF),
    delivery: pick('deliveryRate', 125000),
    pacing: pick('pacingRate', 125000, 2 ** 63),
    acked: pick('bytesAcked', 1e6),
    retrans: pick('totalRetrans'),
  }
}

/** The page's script: table, sorting, verdict bars and charts. Plain ES2017, no imports. */
const APP = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('data').textContent);
  var conns = data.connections;
  function fmt(v, d) { return v === null || v === undefined || !isFinite(v) ? '–' : Number(v).toFixed(d); }
  function bytes(v) { return v >= 1e9 ? fmt(v / 1e9, 2) + ' GB' : v >= 1e6 ? fmt(v / 1e6, 2) + ' MB' : v >= 1e3 ? fmt(v / 1e3, 1) + ' kB' : fmt(v, 0) + ' B'; }
  function rate(v) { return v >= 1e9 ? fmt(v / 1e9, 2) + ' Gbit/s' : v >= 1e6 ? fmt(v / 1e6, 2) + ' Mbit/s' : fmt(v / 1e3, 1) + ' kbit/s'; }
  var cols = [
    ['connection', function (c) { return c.uuid; }, function (c) { return '<a href="#c' + c.i + '">' + c.uuid + '</a><br><small>' + c.local + ' → ' + c.remote + '</small>'; }],
    ['duration (s)', function (c) { return c.summary.durationS; }, function (c) { return fmt(c.summary.durationS, 2); }],
    ['bytes out', function (c) { return c.summary.bytesOut; }, function (c) { return bytes(c.summary.bytesOut); }],
    ['bytes in', function (c) { return c.summary.bytesIn; }, function (c) { return bytes(c.summary.bytesIn); }],
    ['throughput', function (c) { return c.summary.throughputBps; }, function (c) { return rate(c.summary.throughputBps); }],
    ['min RTT (ms)', function (c) { return c.summary.minRttMs; }, function (c) { return fmt(c.summary.minRttMs, 2); }],
    ['median RTT (ms)', function (c) { return c.summary.medianRttMs; }, function (c) { return fmt(c.summary.medianRttMs, 2); }],
    ['retransmits', function (c) { return c.summary.retransmits; }, function (c) { return fmt(c.summary.retransmits, 0); }],
    ['final state', function (c) { return c.summary.finalState; }, function (c) { return c.summary.finalState; }],
    ['limited by', function (c) { return c.summary.verdict.verdict; }, function (c) { return c.summary.verdict.verdict + bar(c.summary.verdict, true); }]
  ];
  function bar(v, small) {
    var parts = [['sender', v.sender], ['receiver', v.receiver], ['network', v.network]];
    var h = '<div class="bar' + (small ? ' small' : '') + '" title="sender ' + fmt(v.sender * 100, 0) + '%, receiver ' + fmt(v.receiver * 100, 0) + '%, network ' + fmt(v.network * 100, 0) + '%">';
    parts.forEach(function (p) { if (p[1] > 0) h += '<span class="' + p[0] + '" style="width:' + (p[1] * 100).toFixed(2) + '%"></span>'; });
    return h + '</div>';
  }
  conns.forEach(function (c, i) { c.i = i; });
  var head = document.querySelector('#summary thead tr');
  var body = document.querySelector('#summary tbody');
  var sortCol = -1, sortDir = 1;
  cols.forEach(function (col, k) {
    var th = document.createElement('th');
    th.textContent = col[0];
    th.addEventListener('click', function () { sortDir = sortCol === k ? -sortDir : 1; sortCol = k; render(); });
    head.appendChild(th);
  });
  function render() {
    var rows = conns.slice();
    if (sortCol >= 0) {
      var key = cols[sortCol][1];
      rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
    }
    body.innerHTML = rows.map(function (c) { return '<tr>' + cols.map(function (col) { return '<td>' + col[2](c) + '</td>'; }).join('') + '</tr>'; }).join('');
  }
  render();
  var charts = [
    ['RTT (ms)', [['rtt', 'RTT', '#1f77b4'], ['minRtt', 'min RTT', '#ff7f0e']]],
    ['cwnd (segments)', [['cwnd', 'cwnd', '#2ca02c'], ['ssthresh', 'ssthresh', '#d62728']]],
    ['rate (Mbit/s)', [['delivery', 'delivery rate', '#9467bd'], ['pacing', 'pacing rate', '#8c564b']]],
    ['bytes acked (MB) / retransmissions', [['acked', 'bytes acked (MB)', '#17becf'], ['retrans', 'retransmissions', '#e377c2', 'r']]]
  ];
  var host = document.getElementById('conns');
  function draw(c, el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = '1';
    charts.forEach(function (spec) {
      var div = document.createElement('div');
      div.className = 'chart';
      el.appendChild(div);
      var series = [{ label: 's' }];
      var data = [c.chart.t];
      var axes = [{ label: 'seconds' }, { label: spec[0] }];
      spec[1].forEach(function (s) {
        series.push({ label: s[1], stroke: s[2], width: 1.5, scale: s[3] || 'y', spanGaps: true });
        data.push(c.chart[s[0]]);
        if (s[3]) axes.push({ scale: s[3], side: 1, grid: { show: false } });
      });
      new uPlot({ title: spec[0], width: 540, height: 220, series: series, axes: axes, scales: { x: { time: false } } }, data, div);
    });
  }
  var lazy = conns.length > ${EAGER_CHARTS} && 'IntersectionObserver' in window;
  var io = lazy ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) { draw(conns[e.target.dataset.i], e.target); io.unobserve(e.target); } });
  }, { rootMargin: '400px' }) : null;
  conns.forEach(function (c, i) {
    var sec = document.createElement('section');
    sec.id = 'c' + i;
    var v = c.summary.verdict;
    sec.innerHTML = '<h2>' + c.uuid + '</h2><p>' + c.local + ' → ' + c.remote + ' · ' + c.summary.records + ' records · ' + fmt(c.summary.durationS, 2) + ' s</p>' +
      '<p class="verdict">limited by <b>' + v.verdict + '</b>: sender ' + fmt(v.sender * 100, 0) + '%, receiver ' + fmt(v.receiver * 100, 0) + '%, network ' + fmt(v.network * 100, 0) + '%' + (v.receiving ? ' (this end received)' : '') + '</p>' + bar(v, false);
    var grid = document.createElement('div');
    grid.className = 'charts';
    grid.dataset.i = i;
    sec.appendChild(grid);
    host.appendChild(sec);
    if (io) io.observe(grid); else draw(c, grid);
  });
})();
`

const CSS = `
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; vertical-align: top; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, 560px); gap: 8px; min-height: 240px; }
.bar { display: flex; height: 14px; width: 100%; max-width: 600px; background: #eee; }
.bar.small { height: 8px; width: 120px; display: inline-flex; margin-left: 6px; }
.bar span { display: block; height: 100%; }
.sender { background: #f0ad4e; } .receiver { background: #5bc0de; } .network { background: #d9534f; }
section { margin-top: 2em; border-top: 2px solid #ccc; }
`

/** The whole HTML document. */
export function renderReport(connections: AnalyzedConnection[], title: string): string {
  const { js, css } = uplotAssets()
  const data = { connections: connections.map((c) => ({ uuid: c.uuid, local: c.local, remote: c.remote, summary: c.summary, chart: chartData(c) })) }
  const json = JSON.stringify(data).replace(/</g, '\\u003c')
  const esc = (s: string): string => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`)
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${css}${CSS}</style>
<script>${js}</script>
</head><body>
<h1>${esc(title)}</h1>
<p>${connections.length} connections. Click a column to sort. Legend: <span class="sender">&nbsp;sender&nbsp;</span> <span class="receiver">&nbsp;receiver&nbsp;</span> <span class="network">&nbsp;network&nbsp;</span> (share of the observed time; method in tcpinfo's docs/REPORT.md).</p>
<table id="summary"><thead><tr></tr></thead><tbody></tbody></table>
<div id="conns"></div>
<script type="application/json" id="data">${json}</script>
<script>${APP}</script>
</body></html>
`
}
