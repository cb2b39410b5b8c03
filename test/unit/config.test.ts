import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { configFields, ConfigError, DEFAULT_CONFIG_PATH, defaultConfig, loadConfig, mergeConfig, profilePath, renderConfigTable, validateConfig } from '../../src/config/index.ts'

describe('config', () => {
  it('the embedded defaults are valid', async () => {
    const config = await loadConfig()
    assert.equal(config.messaging.replayWindowMs, 60_000)
    assert.equal(config.messaging.maxBodyBytes, 1024 * 1024)
    validateConfig(JSON.parse(await readFile(DEFAULT_CONFIG_PATH, 'utf8')))
  })

  it('flags override the defaults; arrays replace, objects merge', async () => {
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], messaging: { maxBodyBytes: 10 } } })
    assert.deepEqual(config.listen, ['/ip4/127.0.0.1/tcp/0'])
    assert.equal(config.messaging.maxBodyBytes, 10)
    assert.equal(config.messaging.replayWindowMs, 60_000)
  })

  it('rejects unknown keys at any depth, naming them', async () => {
    const base = await loadConfig()
    assert.throws(() => validateConfig({ ...base, extra: 1 }), (err: unknown) => err instanceof ConfigError && /unknown key "extra"/.test(err.message))
    assert.throws(() => validateConfig(mergeConfig({ ...base }, { ipc: { maxLineByte: 5 } })), /unknown key "ipc.maxLineByte"/)
  })

  it('rejects bad values with their path', async () => {
    const base = await loadConfig() as unknown as Record<string, unknown>
    assert.throws(() => validateConfig(mergeConfig(base, { logLevel: 'loud' })), /logLevel must be one of/)
    assert.throws(() => validateConfig(mergeConfig(base, { messaging: { replayWindowMs: 301_000 } })), /messaging.replayWindowMs/)
    assert.throws(() => validateConfig(mergeConfig(base, { listen: ['/ip4/1.2.3.4/tcp/x'] })), /listen\[0\] is not a valid multiaddr/)
    assert.throws(() => validateConfig(mergeConfig(base, { connections: 5 })), /"connections" must be an object/)
    assert.throws(() => validateConfig([]), /must be a JSON object/)
  })
})

describe('one config schema', () => {
  it('configs/default.json is exactly the schema\'s defaults', async () => {
    assert.deepEqual(JSON.parse(await readFile(DEFAULT_CONFIG_PATH, 'utf8')), defaultConfig())
  })

  it('the README\'s configuration table is rendered from the schema', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const start = readme.indexOf('<!-- config-table:start -->\n')
    const end = readme.indexOf('\n<!-- config-table:end -->')
    assert.ok(start !== -1 && end > start, 'README has the config-table markers')
    assert.equal(readme.slice(start + '<!-- config-table:start -->\n'.length, end), renderConfigTable())
  })

  it('every setting has a meaning and a default its own check accepts', () => {
    const fields = configFields()
    assert.ok(fields.length >= 39)
    for (const [key, field] of fields) {
      assert.ok(field.doc.length > 5, `${key} is documented`)
      field.check(field.default, key)
    }
  })

  it('the bootstrap profile is an overlay of known keys', async () => {
    const config = await loadConfig({ defaultsFile: profilePath('bootstrap') })
    assert.equal(config.relay.server, true)
    assert.equal(config.dht.mode, 'server')
    assert.equal(config.messaging.replayWindowMs, defaultConfig().messaging.replayWindowMs)
  })
})
