// Connects with the real node-postgres (`pg`) to DATABASE_URL, the way the README tells an app to,
// and prints one JSON line: {"ok": true, "ssl": ..., "user": ...} or {"ok": false, "code", "message"}.
//
//   node pg_connect.js libpq-compat    parse(DATABASE_URL, { useLibpqCompat: true }): the README's recipe
//   node pg_connect.js connection-string   new Client({ connectionString: DATABASE_URL }): pg's default reading
//
// pg-connection-string 2.x (index.js, parse): without libpq compatibility, sslmode require, prefer and
// verify-ca all mean verify-full (the hostname is checked); with it, verify-ca checks the chain against
// sslrootcert and skips the name (`checkServerIdentity` is a no-op), as libpq does.
'use strict'

const { Client } = require('pg')
const { parse, toClientConfig } = require('pg-connection-string')

async function main() {
  const mode = process.argv[2]
  const url = process.env.DATABASE_URL
  let config
  if (mode === 'libpq-compat') {
    config = toClientConfig(parse(url, { useLibpqCompat: true }))
  } else if (mode === 'connection-string') {
    config = { connectionString: url }
  } else {
    throw new Error(`unknown mode ${mode}`)
  }
  const client = new Client({ ...config, connectionTimeoutMillis: 20000 })
  try {
    await client.connect()
    const result = await client.query('select ssl, current_user as user from pg_stat_ssl where pid = pg_backend_pid()')
    console.log(JSON.stringify({ ok: true, ssl: result.rows[0].ssl, user: result.rows[0].user }))
  } catch (error) {
    console.log(JSON.stringify({ ok: false, code: error.code || null, message: String(error.message) }))
  } finally {
    await client.end().catch(() => {})
  }
}

main().catch((error) => {
  console.log(JSON.stringify({ ok: false, code: 'SCRIPT', message: String(error.message) }))
  process.exitCode = 2
})
