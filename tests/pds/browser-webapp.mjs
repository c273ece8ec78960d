// The oauth_webapp example end to end in Debian's headless Chromium, driven by playwright-core
// (tests/pds/node_modules): open app A, enter the handle, sign in and consent on the reference
// PDS's own pages, land back on app A, then post through app B (another process sharing the
// PostgreSQL store) and see the post. Screenshots of each step go to $SCREENSHOTS.
//
// Run by tests/tests/oauth_browser.rs with: APP (the app's public https origin, one client_id
// for both processes, as behind a load balancer), APP_A_LOCAL, APP_B_LOCAL (the processes'
// http://127.0.0.1:PORT listeners), HANDLE, PASSWORD, SCREENSHOTS, CHROMIUM (default
// /usr/bin/chromium). The browser's requests to the app's *.atlex.internal name are served by
// a route (standing in for DNS and the load balancer with its TLS, as tests/pds/start.mjs does
// for the PDS): to process A until the user is signed in, then to process B. Exits non-zero on
// any failure.
import { chromium } from 'playwright-core'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const app = new URL(env('APP')).origin
const [localA, localB] = [env('APP_A_LOCAL'), env('APP_B_LOCAL')]
let backend = localA
const handle = env('HANDLE')
const password = env('PASSWORD')
const shots = env('SCREENSHOTS')
const log = (...args) => console.error('[browser]', ...args)

const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'atlex-chromium-'))
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1000, height: 800 },
  locale: 'en-US',
})
let step = 0
const page = context.pages()[0] ?? (await context.newPage())
const shot = async (name) => {
  step += 1
  const file = path.join(shots, `${String(step).padStart(2, '0')}-${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  log('screenshot', file)
}
try {
  // Chromium does not route the requests a redirect leads to, so the PDS's redirect page
  // (which answers 303 to the app's callback) is fetched by the route too, and its 303 handed
  // to the browser, whose next request (to the app) is then routed.
  const routed = (url) => url.origin === app || url.pathname === '/oauth/authorize/redirect'
  await context.route(
    routed,
    async (route) => {
      const url = new URL(route.request().url())
      const toApp = url.origin === app
      const target = toApp ? backend + url.pathname + url.search : url.href
      // The PDS checks the navigation's fetch metadata, which a fetch from here lacks.
      const headers = toApp ? route.request().headers() : {
        ...route.request().headers(),
        'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'same-origin',
      }
      const response = await route.fetch({ url: target, headers, maxRedirects: 0 })
      const location = response.headers()['location']
      const next = location ? new URL(location, url) : null
      if (response.status() >= 300 && response.status() < 400 && next && routed(next)) {
        // Nor does it route a redirect from a fulfilled response: a 303 to a routed URL (the
        // PDS's to the app's callback, the app's to its own pages) becomes a page that
        // navigates there (same URL, a routed request).
        log('redirect', response.status(), '->', next.href.replace(/code=[^&]*/, 'code=…'))
        const cookies = response.headersArray().filter((h) => h.name.toLowerCase() === 'set-cookie')
        return route.fulfill({
          status: 200,
          headers: Object.fromEntries([['content-type', 'text/html'], ...cookies.map((h) => [h.name, h.value])]),
          body: `<!doctype html><script>location.replace(${JSON.stringify(next.href)})</script>`,
        })
      }
      await route.fulfill({ response })
    },
  )

  await page.goto(app + '/')
  await page.locator('#handle').fill(handle)
  await shot('app-a-sign-in-form')
  await page.locator('#sign-in').click()

  // The PDS's sign-in page.
  await page.waitForURL((u) => u.pathname.startsWith('/oauth/authorize'))
  const passwordBox = page.locator('input[type=password]')
  await passwordBox.waitFor()
  const userBox = page.locator('input[name=username], input[autocomplete=username]').first()
  if (await userBox.count() && !(await userBox.inputValue())) await userBox.fill(handle)
  await passwordBox.fill(password)
  await shot('pds-sign-in')
  await passwordBox.press('Enter')

  // The consent page.
  const allow = page.getByRole('button', { name: /^(accept|allow|authorize)$/i })
  await allow.waitFor({ timeout: 30000 })
  await shot('pds-consent')
  await allow.click()

  // Back on app A, signed in.
  await page.waitForURL((u) => u.origin === app && u.pathname === '/')
  await page.locator('#did').waitFor()
  await shot('app-a-signed-in')
  if ((await page.locator('#served-by').innerText()) !== 'app A') throw new Error('not served by app A')

  // Post through process B: same user, same cookie, another process; the OAuth session and
  // the app session come from the shared PostgreSQL store.
  backend = localB
  await page.goto(app + '/')
  await page.locator('#did').waitFor()
  if ((await page.locator('#served-by').innerText()) !== 'app B') throw new Error('not served by app B')
  const text = `Posted from the browser test through app B (${Date.now()})`
  await page.locator('#text').fill(text)
  await shot('app-b-compose')
  await page.locator('#post').click()
  await page.locator('.post', { hasText: text }).waitFor()
  await shot('app-b-posted')
  console.log(JSON.stringify({ ok: true, text }))
} catch (error) {
  await shot('failure').catch(() => {})
  log('FAILED:', error)
  process.exitCode = 1
} finally {
  await context.close()
}
