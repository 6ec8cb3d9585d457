#!/usr/bin/env node
// @ts-check
/**
 * How fast can clonebox learn the addresses of a whole fleet?
 *
 *   node bench/resolve.mjs [--domains 100] [--runs 5]
 *
 * Generates a libvirt test-driver fleet of N running domains (each with an address chosen by
 * the trick in DESIGN.md §3), then times resolving every domain's addresses:
 *   - native, one bulk call (one worker looping over the domains, 1 and 4 threads inside it)
 *   - native, one call per domain (all at once, and one after the other)
 *   - `virsh -q domifaddr DOM --full` per domain (sequential, and 2 at a time)
 *   - a virsh baseline: as many runs of `virsh -c test:///default uri` (process start + connect)
 * Median of --runs runs after one warm-up. Plain JS (Node 20 runs no TypeScript): it loads the
 * built binding directly, so build it first: npx node-gyp rebuild --directory native
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

// ---------------------------------------------------------------- the fleet generator

const ipv4ToInt = (/** @type {string} */ ip) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const intToIpv4 = (/** @type {number} */ n) =>
  [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/**
 * The address domain `index` (0-based) of a generated fleet answers with: 10.100.x.y, one per domain.
 * @param {number} index
 */
export function benchFleetAddress(index) {
  return intToIpv4(ipv4ToInt('10.100.0.10') + index);
}

/**
 * Writes a test-driver node XML with `count` running domains bench-0001… and returns its path and
 * test:/// URI. Domain i (id i+1, one interface) reports benchFleetAddress(i)/16: its network's
 * base is the wanted address minus 20*(id-1)+1 (ids go 1, 2, 3… in file order, DESIGN.md §3).
 * @param {number} count
 * @param {string} [dir] defaults to a new temporary directory
 */
export function writeBenchFleet(count, dir = mkdtempSync(join(tmpdir(), 'clonebox-bench-'))) {
  const parts = ['<node>'];
  for (let i = 0; i < count; i++) {
    const id = i + 1;
    const name = `bench-${String(id).padStart(4, '0')}`;
    const base = intToIpv4(ipv4ToInt(benchFleetAddress(i)) - (20 * (id - 1) + 1));
    const mac = `52:54:00:be:${((id >> 8) & 0xff).toString(16).padStart(2, '0')}:${(id & 0xff).toString(16).padStart(2, '0')}`;
    parts.push(
      `  <network><name>net-${name}</name><bridge name="cbb${id}"/><ip address="${base}" netmask="255.255.0.0"/></network>`,
      `  <domain type="test"><name>${name}</name><memory unit="MiB">64</memory><os><type>hvm</type></os>` +
        `<devices><interface type="network"><mac address="${mac}"/><source network="net-${name}"/></interface></devices></domain>`,
    );
  }
  parts.push('</node>', '');
  const path = join(dir, `fleet-${count}.xml`);
  writeFileSync(path, parts.join('\n'));
  return { dir, path, uri: `test://${path}` };
}

// ---------------------------------------------------------------- timing

/** @param {number[]} xs */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * @param {number} runs
 * @param {() => Promise<unknown>} fn
 */
async function time(runs, fn) {
  await fn(); // warm-up
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

/**
 * Runs fn over items with at most `limit` in flight.
 * @template T
 * @param {readonly T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<unknown>} fn
 */
async function mapLimit(items, limit, fn) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

// ---------------------------------------------------------------- main

/**
 * @param {string[]} argv
 * @param {string} name
 * @param {number} fallback
 */
function option(argv, name, fallback) {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
}

async function main() {
  const count = option(process.argv, '--domains', 100);
  const runs = option(process.argv, '--runs', 5);
  const bindingPath = fileURLToPath(new URL('../native/build/Release/clonebox_libvirt.node', import.meta.url));
  const binding = createRequire(import.meta.url)(bindingPath);
  const fleet = writeBenchFleet(count);
  try {
    const names = Array.from({ length: count }, (_, i) => `bench-${String(i + 1).padStart(4, '0')}`);
    const expected = new Map(names.map((n, i) => [n, benchFleetAddress(i)]));

    const openMs = await time(runs, async () => (await binding.open(fleet.uri, false)).close());
    const conn = await binding.open(fleet.uri, false);

    // The answer must be right before its speed matters.
    const check = (/** @type {any[]} */ rows) => {
      if (rows.length !== count) throw new Error(`expected ${count} answers, got ${rows.length}`);
      for (const r of rows) {
        const got = r.error ? r.error.message : r.interfaces[0]?.addrs[0]?.addr;
        if (got !== expected.get(r.name)) throw new Error(`${r.name}: expected ${expected.get(r.name)}, got ${got}`);
      }
    };
    check(await binding.interfaceAddresses(conn, null, 0));
    const last = names[names.length - 1] ?? '';
    const { stdout } = await run('virsh', ['-c', fleet.uri, '-q', 'domifaddr', last, '--full']);
    if (!stdout.includes(`${expected.get(last)}/16`)) throw new Error(`virsh disagrees about ${last}: ${stdout}`);

    const virshDomifaddr = (/** @type {string} */ name) =>
      run('virsh', ['-c', fleet.uri, '-q', 'domifaddr', name, '--full']);

    /** @type {Array<[string, number]>} */
    const rows = [];
    const measure = async (/** @type {string} */ label, /** @type {() => Promise<unknown>} */ fn) => {
      rows.push([label, await time(runs, fn)]);
    };
    await measure('native: one bulk call (1 thread)', async () => check(await binding.interfaceAddresses(conn, names, 0, 1)));
    await measure('native: one bulk call (4 threads)', async () => check(await binding.interfaceAddresses(conn, names, 0, 4)));
    await measure('native: one call per domain, all at once', async () =>
      check((await Promise.all(names.map((n) => binding.interfaceAddresses(conn, [n], 0)))).flat()),
    );
    await measure('native: one call per domain, sequential', async () => {
      for (const n of names) await binding.interfaceAddresses(conn, [n], 0);
    });
    await measure('native: listDomains (for scale)', () => binding.listDomains(conn));
    await measure('virsh domifaddr per domain, sequential', () => mapLimit(names, 1, virshDomifaddr));
    await measure('virsh domifaddr per domain, 2 at a time', () => mapLimit(names, 2, virshDomifaddr));
    // What part of a virsh run is only process start + connect: the same number of runs doing nothing.
    await measure(`virsh baseline: ${count} x 'uri' on test:///default`, () =>
      mapLimit(names, 1, () => run('virsh', ['-c', 'test:///default', '-q', 'uri'])),
    );
    await conn.close();

    const base = rows[0][1];
    const width = Math.max(...rows.map(([l]) => l.length));
    console.log(
      `clonebox resolve bench: ${count} running domains, libvirt ${binding.libvirtVersion} test driver, ` +
        `median of ${runs} runs (after a warm-up), node ${process.version}`,
    );
    console.log(`open + close one native connection: ${openMs.toFixed(2)} ms (parses the ${count}-domain XML)\n`);
    console.log(`${'method'.padEnd(width)}  ${'total ms'.padStart(10)}  ${'ms/domain'.padStart(9)}  ${'vs bulk'.padStart(8)}`);
    for (const [label, ms] of rows) {
      console.log(
        `${label.padEnd(width)}  ${ms.toFixed(2).padStart(10)}  ${(ms / count).toFixed(3).padStart(9)}  ${`${(ms / base).toFixed(1)}x`.padStart(8)}`,
      );
    }
    console.log(
      `\nnote: the test driver reads its XML on every connection, so each virsh run here also parses the ${count}-domain file` +
        '\n      (see the open cost above); against a real libvirtd a virsh run costs about the baseline row per domain,' +
        '\n      and each native call one RPC round trip instead of a function call.',
    );
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
