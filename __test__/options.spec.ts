/**
 * The options boundary (issue 8): every option of watch() and snapshot() is checked
 * synchronously, before any native call; a bad value is ERR_CONFIG naming the option and
 * echoing the value; nothing the user passes can crash, abort or hang the process.
 */
import test from 'ava'
import fc from 'fast-check'

import { snapshot, TcpinfoError, watch } from '../src/index.js'
import { watchSchema } from '../src/config/poll-options.js'

/** Runs `fn`, which must throw ERR_CONFIG synchronously; returns the message. */
function configMessage(t: import('ava').ExecutionContext, fn: () => unknown): string {
  const e = t.throws(fn, { instanceOf: TcpinfoError })
  t.is(e?.code, 'ERR_CONFIG', e?.message)
  return e?.message ?? ''
}

const BAD: [Record<string, unknown>, RegExp][] = [
  [{ queueDepth: -1 }, /^queueDepth must be an integer from 1 to 1024, got -1$/],
  [{ queueDepth: 2 ** 32 }, /queueDepth .* got 4294967296/],
  [{ queueDepth: 1.5 }, /queueDepth/],
  [{ queueDepth: '8' }, /queueDepth .* got "8"/],
  [{ maxQueuedBytes: -1 }, /maxQueuedBytes/],
  [{ maxQueuedBytes: 1e30 }, /maxQueuedBytes .* got 1e\+30/],
  [{ maxQueuedBytes: Number.NaN }, /maxQueuedBytes .* got NaN/],
  [{ intervalMs: 0 }, /intervalMs .* got 0/],
  [{ intervalMs: -5 }, /intervalMs/],
  [{ intervalMs: 1e30 }, /intervalMs .* got 1e\+30/],
  [{ intervalMs: Number.NaN }, /intervalMs .* got NaN/],
  [{ intervalMs: Number.POSITIVE_INFINITY }, /intervalMs .* got Infinity/],
  [{ intervalMs: 10n }, /intervalMs .* got 10n/],
  [{ excludeSrcPorts: [0] }, /excludeSrcPorts\[0\] must be an integer from 1 to 65535, got 0/],
  [{ excludeSrcPorts: [70000] }, /excludeSrcPorts\[0\]/],
  [{ excludeSrcPorts: [22.5] }, /excludeSrcPorts\[0\]/],
  [{ excludeSrcPorts: 22 }, /excludeSrcPorts must be a list/],
  [{ excludeDst: ['not-an-ip'] }, /excludeDst\[0\] .* got "not-an-ip"/],
  [{ excludeDst: ['10.0.0.0/40'] }, /excludeDst\[0\]/],
  [{ excludeDst: ['::1/129'] }, /excludeDst\[0\]/],
  [{ ext: 256 }, /ext must be an integer from 0 to 255, got 256/],
  [{ states: 0 }, /states/],
  [{ states: 1 << 20 }, /states/],
  [{ states: ['sleepy'] }, /unknown state "sleepy"; valid: established, syn-sent/],
  [{ states: 'nope' }, /states/],
  [{ families: ['ipx'] }, /families\[0\] must be 'inet' or 'inet6'/],
  [{ families: [] }, /families/],
  [{ families: 'inet' }, /families must be a list/],
  [{ change: { ignoreTcpInfoFields: ['noSuchField'] } }, /change.ignoreTcpInfoFields\[0\] must be one of state, caState/],
  [{ change: { stateonly: true } }, /unknown option change.stateonly in change \(did you mean change.stateOnly\?\)/],
  [{ change: 'yes' }, /change must be an object/],
  [{ destroyEvents: 'no' }, /destroyEvents must be true or false, got "no"/],
  [{ uuidPrefix: '../../etc' }, /uuidPrefix/],
  [{ uuidPrefix: '' }, /uuidPrefix/],
  [{ netns: 42 }, /netns/],
  [{ signal: {} }, /signal must be an AbortSignal/],
  [{ interval: 10 }, /unknown option interval in watch\(\) options \(did you mean intervalMs\?\)/],
  [{ queuedepth: 3 }, /did you mean queueDepth\?/],
  [{ exclude_local: true }, /did you mean excludeLocal\?/],
  [{ constructor: 1 }, /unknown option constructor/],
  [{ __proto__: null, toString: 1 }, /unknown option toString/],
]

for (const [i, [options, message]] of BAD.entries()) {
  test(`bad option ${i}: ${message.source.slice(0, 40)} throws ERR_CONFIG synchronously`, (t) => {
    t.regex(configMessage(t, () => watch(options as never)), message)
  })
}

test('non-object options are ERR_CONFIG', (t) => {
  for (const o of [null, 5, 'fast', [1], true]) configMessage(t, () => watch(o as never))
  for (const o of [null, 5, []]) configMessage(t, () => snapshot(o as never))
})

test('snapshot() checks synchronously and names watch-only options', (t) => {
  t.regex(configMessage(t, () => snapshot({ intervalMs: 5 } as never)), /intervalMs is an option of watch\(\), not of snapshot\(\)/)
  t.regex(configMessage(t, () => snapshot({ excludeSrcPorts: [-1] })), /excludeSrcPorts\[0\]/)
})

test('good values are accepted with their documented meaning', async (t) => {
  const states = [['ESTABLISHED'], 'listening', 'LISTEN', ['syn_sent', 'fin-wait-1'], 'connected', 'synchronized', 'all', 0xf37, ['big'], ['bucket']]
  for (const s of states) {
    const w = watch({ states: s as never, intervalMs: 1000 })
    t.truthy(w)
    w.close()
  }
  const b = await snapshot({ families: [2, 'inet6'], states: 'listening' })
  t.true(b.connections.every((c) => c.state === 10))
  const w = watch({ queueDepth: 1024, maxQueuedBytes: 64 * 1024, intervalMs: 0.5, excludeDst: ['10.0.0.0/8', '::ffff:1.2.3.4', '2001:db8::/32'], excludeSrcPorts: [22, 65535], change: { ignoreTcpInfoFields: ['rtt'], stateOnly: false }, reportUnconnected: true })
  const first = await w.next()
  t.false(first.done)
  await w.return?.()
})

/** Arbitrary JS values of every kind, including the nasty ones. */
const junk = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e30, -1e30, 2 ** 53, -1, 0, 1, 2 ** 32, 0.5),
  fc.constantFrom('constructor', '__proto__', 'toString', '', '\0', 'inet', 'listening', '10.0.0.0/8', 'rtt'),
  fc.bigInt(),
  fc.array(fc.oneof(fc.integer(), fc.string(), fc.constantFrom(Number.NaN, 2, 10, 'inet6', 'all')), { maxLength: 5 }),
  fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
  fc.constant(undefined),
  fc.constant(null),
  fc.constant(() => 1),
  fc.constant(Symbol('x')),
)

const NAMES = [...Object.keys(watchSchema), 'interval', 'constructor', '__proto__', 'hasOwnProperty', 'nope']

test('property: any value for any option is accepted or ERR_CONFIG, synchronously; never another error', (t) => {
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom(...NAMES), junk, { maxKeys: 4 }), (options) => {
      let w
      try {
        w = watch(options as never)
      } catch (e) {
        if (!(e instanceof TcpinfoError) || e.code !== 'ERR_CONFIG') throw e
        if (!/ must be |^unknown option |is an option of/.test(e.message)) throw e
        return
      }
      // Accepted: nothing native ran yet; close without polling.
      w.close()
    }),
    { numRuns: 3000 },
  )
  t.pass()
})

test('property: accepted options really start a poller, which the kernel accepts', async (t) => {
  // A smaller run that also starts the native poller: no panic, no abort, no ERR_INTERNAL.
  const samples = fc.sample(fc.dictionary(fc.constantFrom(...Object.keys(watchSchema).filter((k) => k !== 'netns' && k !== 'uuidPrefixFile' && k !== 'signal')), junk, { maxKeys: 3 }), { numRuns: 400, seed: 8 })
  let started = 0
  for (const options of samples) {
    let w
    try {
      w = watch({ ...(options as object), intervalMs: 1000 } as never)
    } catch (e) {
      t.true(e instanceof TcpinfoError && e.code === 'ERR_CONFIG', String(e))
      continue
    }
    const r = await w.next().catch((e: unknown) => e)
    t.false(r instanceof Error && (r as TcpinfoError).code !== 'ERR_SOCKET', String(r))
    await w.return?.()
    started++
  }
  t.true(started > 5, `${started} accepted samples started`)
})
