/**
 * The churn load of the soak test (issue 15), run inside a network namespace:
 *
 *   node churn.cjs server ADDR PORT REPLY
 *   node churn.cjs client ADDR PORT RATE SECONDS SIZE [MAX_LIVE]
 *
 * The server reads each connection to its end, answers REPLY bytes and closes; it prints
 * one line (`{"up":true}`) and nothing per connection (a line per connection would be
 * 500 lines a second for the parent to read). The client opens RATE connections per
 * second for SECONDS, paced against the clock (every 2 ms it opens what is due, so a
 * stalled event loop catches up instead of losing the rate); each sends SIZE bytes,
 * half-closes, reads the reply to the end and closes. It prints once a second
 * `{"t","started","done","live","errors","lag"}` and at the end
 * `{"end":true,"started","done","errors","codes","seconds","rate","maxLive","maxLag","lifeMeanMs","lifeMaxMs"}`,
 * where `rate` is the achieved opening rate (started / the opening window) and `lag` the
 * connections due but not yet started (at most MAX_LIVE are in flight); `lifeMeanMs` and
 * `lifeMaxMs` are the connections' lifetimes (from `connect` to the close of the socket).
 *
 * Each connection's client side ends in TIME_WAIT (it closes first): at 500/s that is
 * 30,000 TIME_WAIT sockets on one destination, more than the default 28,232 ephemeral
 * ports, so the namespace running the client needs a wider `ip_local_port_range` and
 * `tcp_tw_reuse=1` (see the soak test); otherwise `connect` fails with EADDRNOTAVAIL
 * after about a minute.
 */
'use strict'
const net = require('node:net')

const [mode, addr, portText, ...rest] = process.argv.slice(2)
const port = Number(portText)

if (mode === 'server') {
  const reply = Buffer.alloc(Number(rest[0]), 98)
  const server = net.createServer((s) => {
    s.on('error', () => {})
    s.on('end', () => s.end(reply))
    s.resume()
  })
  server.listen({ port, host: addr, backlog: 4096 }, () => console.log('{"up":true}'))
} else if (mode === 'client') {
  const [rate, seconds, size] = rest.slice(0, 3).map(Number)
  const maxLive = Number(rest[3] ?? 8000)
  const payload = Buffer.alloc(size, 97)
  let started = 0
  let done = 0
  let errors = 0
  let live = 0
  let maxLiveSeen = 0
  let maxLag = 0
  let openedUntil = 0
  let lifeSum = 0
  let lifeMax = 0
  const codes = {}
  const t0 = process.hrtime.bigint()
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9
  const one = () => {
    started++
    live++
    if (live > maxLiveSeen) maxLiveSeen = live
    const born = performance.now()
    const c = net.connect({ port, host: addr, noDelay: true }, () => c.end(payload))
    c.resume()
    c.on('error', (e) => {
      errors++
      codes[e.code] = (codes[e.code] ?? 0) + 1
    })
    c.on('close', (hadError) => {
      live--
      if (hadError) return
      done++
      const life = performance.now() - born
      lifeSum += life
      if (life > lifeMax) lifeMax = life
    })
  }
  const lagNow = (el) => Math.floor(Math.min(el, seconds) * rate) - started
  const tick = setInterval(() => {
    const el = elapsed()
    const due = lagNow(el)
    for (let i = 0; i < due && live < maxLive; i++) one()
    const lag = lagNow(el)
    if (lag > maxLag) maxLag = lag
    if (el >= seconds && started >= rate * seconds) {
      clearInterval(tick)
      clearInterval(report)
      openedUntil = el
      const wait = setInterval(() => {
        if (live > 0) return
        clearInterval(wait)
        console.log(JSON.stringify({ end: true, started, done, errors, codes, seconds: openedUntil, rate: started / openedUntil, maxLive: maxLiveSeen, maxLag, lifeMeanMs: lifeSum / Math.max(done, 1), lifeMaxMs: lifeMax }))
      }, 20)
    }
  }, 2)
  const report = setInterval(() => {
    const el = elapsed()
    console.log(JSON.stringify({ t: Math.round(el * 10) / 10, started, done, live, errors, lag: lagNow(el) }))
  }, 1000)
} else {
  console.error('usage: churn.cjs server ADDR PORT REPLY | client ADDR PORT RATE SECONDS SIZE [MAX_LIVE]')
  process.exit(2)
}
