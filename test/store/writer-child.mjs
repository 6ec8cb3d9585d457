// A separate OS process writing to the store: advances one check `count` times (forever when count < 0),
// printing one line per committed round. Used by the concurrency and kill -9 tests (test/store/contract.ts).
// argv[2]: JSON { module, spec, vm, check, count, status }
const { module, spec, vm, check, count, status } = JSON.parse(process.argv[2]);
const { openStore } = await import(module);
const store = await openStore(spec, { retentionMs: 0 });

function report(i) {
  const timestamp = new Date().toISOString();
  return {
    vm_name: vm,
    overall_status: status,
    timestamp,
    duration_ms: 1,
    checks: [
      {
        name: check,
        type: 'tcp',
        status,
        timestamp,
        duration_ms: 1,
        message: `child ${process.pid} round ${i}`,
        critical: true,
        transport: 'host',
        details: { pid: process.pid, round: i },
      },
    ],
    counts: { total: 1, healthy: 0, degraded: 0, unhealthy: 1, unknown: 0 },
    total_checks: 1,
    healthy_checks: 0,
    unhealthy_checks: 1,
  };
}

for (let i = 0; count < 0 || i < count; i++) {
  await store.advanceRound({ reports: [report(i)] });
  process.stdout.write(`${i + 1}\n`);
}
await store.close();
