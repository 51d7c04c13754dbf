// Traffic for the passive RTT tests, run inside a network namespace with `ip netns exec`.
//   server HOST PORT        accept; each client sends "<bytes>\n" (-1: endless) and gets
//                           that many bytes, then the connection stays open until the client closes
//                           ("ping\n": echo everything instead)
//   client HOST PORT N BYTES  open N connections, read BYTES on each, print "done", then
//                           keep them open until stdin closes
//   udp HOST PORT MBIT      send 1400-byte UDP datagrams at MBIT Mbit/s until killed
//                           (a standing queue in front of a slower bottleneck)
//   ping HOST PORT N COUNT [wait]  open N connections, each sends COUNT 100-byte requests
//                           10 ms apart and waits for each echo, print "done", keep open as
//                           client; with "wait": print "ready" and connect on a "go" line
import dgram from 'node:dgram'
import net from 'node:net'

const [mode, host, portArg, nArg, bytesArg] = process.argv.slice(2)
const port = Number(portArg)
const chunk = Buffer.alloc(64 * 1024, 0x61)

if (mode === 'server') {
  const server = net.createServer((s) => {
    s.on('error', () => {})
    let req = ''
    s.on('data', (d) => {
      if (req.includes('\n')) return
      req += d.toString()
      if (!req.includes('\n')) return
      if (req.startsWith('ping')) {
        s.removeAllListeners('data')
        s.on('data', (d2) => s.write(d2))
        // The first request may have come in the same segment as the header.
        const rest = req.slice(req.indexOf('\n') + 1)
        if (rest.length > 0) s.write(rest)
        return
      }
      let left = Number(req.trim())
      const pump = () => {
        while (left !== 0) {
          const n = left < 0 ? chunk.length : Math.min(left, chunk.length)
          if (left > 0) left -= n
          if (!s.write(chunk.subarray(0, n))) return void s.once('drain', pump)
        }
      }
      pump()
    })
    s.on('end', () => s.end())
  })
  server.listen(port, host, () => console.log('listening'))
} else if (mode === 'udp') {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
  const payload = Buffer.alloc(1400, 0x75)
  const perTick = (Number(nArg) * 1e6) / 8 / payload.length / 200
  let owed = 0
  // A full bottleneck queue refuses datagrams (ENOBUFS): expected, ignored.
  const ignore = () => {}
  sock.on('error', ignore)
  setInterval(() => {
    for (owed += perTick; owed >= 1; owed--) sock.send(payload, port, host, ignore)
  }, 5)
  console.log('sending')
} else if (mode === 'ping') {
  const [n, count] = [Number(nArg), Number(bytesArg)]
  let done = 0
  const socks = []
  const open = () => {
    for (let i = 0; i < n; i++) {
      const c = net.connect(port, host, () => {
        c.setNoDelay(true)
        c.write('ping\n')
        let sent = 0
        let got = 0
        const send = () => {
          sent++
          c.write(Buffer.alloc(100, 0x70))
        }
        c.on('data', (d) => {
          got += d.length
          if (got < sent * 100) return
          if (sent < count) setTimeout(send, 10)
          else if (++done === n) console.log('done')
        })
        send()
      })
      c.on('error', (e) => {
        console.error(e.message)
        process.exit(1)
      })
      socks.push(c)
    }
  }
  if (process.argv[7] === 'wait') {
    // Started ahead (node's start-up costs CPU), connects when told.
    process.stdin.once('data', () => open())
    console.log('ready')
  } else open()
  process.stdin.resume()
  process.stdin.on('end', () => {
    for (const c of socks) c.end()
    setTimeout(() => process.exit(0), 200)
  })
} else {
  const n = Number(nArg)
  const bytes = Number(bytesArg)
  let done = 0
  const socks = []
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, host, () => c.write(`${bytes}\n`))
    socks.push(c)
    let got = 0
    c.on('error', (e) => {
      console.error(e.message)
      process.exit(1)
    })
    c.on('data', (d) => {
      if (bytes < 0) return
      got += d.length
      if (got >= bytes && got - d.length < bytes && ++done === n) console.log('done')
    })
  }
  if (bytes < 0) console.log('done')
  process.stdin.resume()
  process.stdin.on('end', () => {
    for (const c of socks) c.end()
    setTimeout(() => process.exit(0), 200)
  })
}
