import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem, tmpdir } from 'node:os';
import { basename } from 'node:path';
import { filesystemOf } from './ceilings.js';

/** The machine a run happened on, for the report: figures from different machines do not compare. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly disk: {
    readonly path: string;
    readonly filesystem: string;
    readonly device: string;
    /** From /sys/block/<device>/queue/rotational: 'ssd', 'rotational' or 'unknown' (virtual disks often lie). */
    readonly kind: string;
  };
}

/** The mounted device holding `path` (longest matching mount point in /proc/mounts). */
function mountDevice(path: string): string {
  try {
    let best = { mountPoint: '', device: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mountPoint] = line.split(' ');
      if (device === undefined || mountPoint === undefined) continue;
      const inside = path === mountPoint || path.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
      if (inside && mountPoint.length > best.mountPoint.length) best = { mountPoint, device };
    }
    return best.device;
  } catch {
    return 'unknown';
  }
}

function diskKind(device: string): string {
  try {
    const flag = readFileSync(`/sys/block/${basename(device)}/queue/rotational`, 'utf8').trim();
    return flag === '0' ? 'ssd' : flag === '1' ? 'rotational' : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Describes this machine; `dataPath` is where the clusters keep their data. */
export function machineInfo(dataPath: string = tmpdir()): MachineInfo {
  const device = mountDevice(dataPath);
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    disk: { path: dataPath, filesystem: filesystemOf(dataPath), device, kind: diskKind(device) },
  };
}
