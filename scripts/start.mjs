// `npm start`: build the app if it is missing or older than its sources, then run the relay + app server.
import { spawnSync, spawn } from 'node:child_process'
import { existsSync, statSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

function newest(dir) {
  let t = 0
  if (!existsSync(dir)) return t
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}
const built = existsSync('build/index.html') ? statSync('build/index.html').mtimeMs : 0
const sources = Math.max(newest('src'), newest('agents'), newest('static'), statSync('package.json').mtimeMs)
if (built < sources || process.argv.includes('--build')) {
  console.log('Building the app (first start or sources changed)…')
  const r = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
const args = process.argv.slice(2).filter((a) => a !== '--build')
const child = spawn(process.execPath, ['--import', 'tsx', 'relay/index.ts', ...args], { stdio: 'inherit' })
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM']))
  process.on(sig, () => {
    child.kill(sig)
  })
child.on('exit', (code) => process.exit(code ?? 0))
