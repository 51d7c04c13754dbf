/** A small SVG line chart renderer for the soak test's resource curves (no dependency). */

export interface Series {
  /** Panel title, with its unit. */
  title: string
  /** Values, one per sample. */
  values: number[]
}

const W = 420
const H = 160
const PAD = { l: 56, r: 12, t: 24, b: 28 }

function fmt(v: number): string {
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`
  return Number.isInteger(v) ? String(v) : v.toFixed(1)
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** One panel at (x, y): axes from 0 to the maximum (so a flat curve looks flat), the curve, min/max labels. */
function panel(s: Series, times: number[], x: number, y: number): string {
  const max = Math.max(1, ...s.values) * 1.1
  const tMax = Math.max(1, times.at(-1) ?? 1)
  const pw = W - PAD.l - PAD.r
  const ph = H - PAD.t - PAD.b
  const pts = s.values.map((v, i) => `${(x + PAD.l + ((times[i] ?? 0) / tMax) * pw).toFixed(1)},${(y + PAD.t + ph - (v / max) * ph).toFixed(1)}`).join(' ')
  const ticks = [0, 0.5, 1].map((f) => {
    const ty = y + PAD.t + ph - f * ph
    return `<line x1="${x + PAD.l - 4}" y1="${ty}" x2="${x + PAD.l + pw}" y2="${ty}" stroke="#ddd"/><text x="${x + PAD.l - 6}" y="${ty + 4}" text-anchor="end">${fmt(f * max)}</text>`
  })
  const xt = [0, 0.5, 1].map((f) => `<text x="${x + PAD.l + f * pw}" y="${y + H - 10}" text-anchor="middle">${fmt(Math.round(f * tMax))} s</text>`)
  const lo = Math.min(...s.values)
  const hi = Math.max(...s.values)
  return [
    `<text x="${x + PAD.l}" y="${y + 16}" font-weight="bold">${esc(s.title)}</text>`,
    `<text x="${x + W - PAD.r}" y="${y + 16}" text-anchor="end">min ${fmt(lo)} · max ${fmt(hi)}</text>`,
    ...ticks,
    ...xt,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts}"/>`,
  ].join('\n')
}

/** Panels in two columns under a title; `times` in seconds since the start. */
export function renderChart(title: string, subtitle: string, times: number[], series: Series[]): string {
  const cols = 2
  const rows = Math.ceil(series.length / cols)
  const width = cols * W
  const height = rows * H + 44
  const body = series.map((s, i) => panel(s, times, (i % cols) * W, 44 + Math.floor(i / cols) * H))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="34">${esc(subtitle)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}
