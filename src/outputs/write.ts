/**
 * Replace a file atomically, so a reader (node_exporter's textfile collector, a CI step, a cron
 * consumer) sees either the old content or the new one, never a partial write: write a temp file in
 * the same directory, fsync it, rename it over the target, fsync the directory so the rename survives
 * a crash. The same recipe node_exporter's docs ask of textfile writers (`... > x.prom.$$ && mv`).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export class OutputFileError extends Error {
  override name = 'OutputFileError';
}

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'its directory does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return e.message ?? String(err);
  }
}

/** fsync of a directory; some file systems refuse it (EINVAL, EISDIR on a few), which is no reason to fail. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EACCES') throw err;
  } finally {
    await handle?.close();
  }
}

/** Write `content` to `path` atomically (mode 0644). Throws OutputFileError naming the path. */
export async function writeOutputFile(path: string, content: string | Uint8Array): Promise<void> {
  const target = resolve(path);
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    // `wx`: never follow or reuse something already at the temp name.
    const handle = await open(temp, 'wx', 0o644);
    created = true;
    try {
      await handle.writeFile(content);
      // The umask may have narrowed the mode; readers such as node_exporter run as another user.
      await handle.chmod(0o644);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
    created = false;
    await syncDirectory(dir);
  } catch (err) {
    if (created) await unlink(temp).catch(() => undefined);
    throw new OutputFileError(`cannot write output file ${path}: ${reasonOf(err)}.`, { cause: err });
  }
}
