#!/usr/bin/env node
/**
 * Where a real `health watch` round's main-thread CPU goes: `runWatch` in this process, the inspector's CPU profiler
 * over rounds FROM…TO (default 10…25 at a 3 s interval: warm rounds), written as a .cpuprofile for Chrome DevTools or
 * any profile viewer. Needs a fleet: `bench/fleet --sizes 200 --methods cbx --serve 1200`.
 *
 *   ip netns exec cbx-bench node bench/watch-prof.mjs CONFIG [interval-seconds] [out.cpuprofile]
 *   FROM=6 TO=11 SAMPLE_US=1000 … 30      (steady rounds at the default interval: ~6 minutes)
 *
 * The profiler costs CPU itself (more at a finer SAMPLE_US): read the profile for shares, not for the round's cost
 * (bench/fleet's watch method measures that from /proc).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { watchInProcess } from './watch-in-process.mjs';

const [config, intervalArg = '3', out = 'watch.cpuprofile'] = process.argv.slice(2);
if (!config) {
  console.error('usage: node bench/watch-prof.mjs CONFIG [interval-seconds] [out.cpuprofile]');
  process.exit(2);
}
const FROM = Number(process.env.FROM ?? 10);
const TO = Number(process.env.TO ?? 25);
const session = new Session();
session.connect();
let cpu0;

async function onRound(rounds) {
  if (rounds === FROM) {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.SAMPLE_US ?? 200) });
    await session.post('Profiler.start');
    cpu0 = process.cpuUsage();
  }
  if (rounds === TO) {
    const cpu = process.cpuUsage(cpu0);
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(out, JSON.stringify(profile));
    console.error(`rounds ${FROM}–${TO}: ${((cpu.user + cpu.system) / (TO - FROM) / 1000).toFixed(0)} ms CPU per round (profiler on); profile in ${out}`);
  }
}

await watchInProcess({ config, intervalS: Number(intervalArg), rounds: TO + 1, onRound });
