import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small ext4 file system on a loop device (RELIABILITY.md Tier 2, "a full disk"): a sparse
 * image made with truncate, mkfs.ext4 -q -F, `mount -o loop`. The mount's loop device is
 * allocated by mount and released by umount (autoclear); destroy() also detaches any device
 * still backed by this image — only this image's, never another test's.
 */

/** Tools the full-disk tests need; the ones that must be present to run at all. */
const TOOLS = ['truncate', 'mkfs.ext4', 'losetup', 'mount', 'umount', 'e2fsck', 'resize2fs'] as const;

/** Filler writes: big chunks first, then smaller ones down to the 1 KiB block of a small ext4. */
const FILL_CHUNK_BYTES = [1024 * 1024, 64 * 1024, 4096, 1024] as const;
/** A filler never writes more than this (the image is far smaller): a limit on the loop. */
const FILL_BYTES_MAX = 1024 * 1024 * 1024;

/** Why the full-disk tests cannot run here, or null when they can (root, tools present). */
export function loopDiskUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (loop mounts need root)';
  for (const tool of TOOLS) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (apt-get install -y e2fsprogs util-linux mount coreutils)`;
    }
  }
  return null;
}

function run(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class LoopDisk {
  /** A private temporary directory holding the image and the mount point. */
  readonly directory: string;
  readonly image: string;
  readonly mountPoint: string;
  #mounted = false;
  #destroyed = false;

  private constructor(directory: string) {
    this.directory = directory;
    this.image = join(directory, 'disk.img');
    this.mountPoint = join(directory, 'mnt');
  }

  /** Makes a fresh `sizeBytes` ext4 image and mounts it. */
  static create(sizeBytes: number): LoopDisk {
    const disk = new LoopDisk(mkdtempSync(join(tmpdir(), 'conclave-full-disk-')));
    try {
      mkdirSync(disk.mountPoint);
      run('truncate', ['-s', String(sizeBytes), disk.image]);
      run('mkfs.ext4', ['-q', '-F', disk.image]);
      disk.mount();
    } catch (error) {
      disk.destroy();
      throw error;
    }
    return disk;
  }

  /** The loop devices backed by this image (normally one while mounted, none after umount). */
  devices(): string[] {
    const lines = run('losetup', ['-j', this.image]).split('\n').filter((line) => line.includes(':'));
    return lines.map((line) => line.slice(0, line.indexOf(':')));
  }

  /** Bytes root may still write (ext4's reserved blocks included: the agent runs as root). */
  freeBytes(): number {
    const stats = statfsSync(this.mountPoint);
    return stats.bfree * stats.bsize;
  }

  /** Writes `name` on the disk until ENOSPC, fsynced; returns the bytes it holds. */
  fill(name: string): number {
    const fd = openSync(join(this.mountPoint, name), 'w');
    let written = 0;
    try {
      for (const chunkBytes of FILL_CHUNK_BYTES) {
        const chunk = Buffer.alloc(chunkBytes, 0x5a);
        while (written < FILL_BYTES_MAX) {
          try {
            written += writeSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
            break;
          }
        }
      }
      try {
        fsyncSync(fd);
      } catch (error) {
        // Delayed allocation may only find out now; the file then holds what fitted.
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  /**
   * Grows the file system to `sizeBytes`, offline: unmount, grow the image, e2fsck -f (which
   * resize2fs requires), resize2fs, mount again. (Online resize2fs is refused in some
   * containers, "Permission denied to resize filesystem".)
   */
  grow(sizeBytes: number): void {
    this.unmount();
    run('truncate', ['-s', String(sizeBytes), this.image]);
    try {
      run('e2fsck', ['-f', '-y', this.image]);
    } catch (error) {
      // Exit status 1 means "errors corrected"; anything above is a real failure.
      if ((error as { status?: number }).status !== 1) throw error;
    }
    run('resize2fs', [this.image]);
    this.mount();
  }

  mount(): void {
    run('mount', ['-o', 'loop', this.image, this.mountPoint]);
    this.#mounted = true;
  }

  unmount(): void {
    run('umount', [this.mountPoint]);
    this.#mounted = false;
  }

  /** Unmounts (lazily if busy), detaches this image's loop devices, deletes the directory. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#mounted) {
      try {
        this.unmount();
      } catch {
        try {
          run('umount', ['-l', this.mountPoint]);
        } catch {
          // not mounted after all
        }
      }
      this.#mounted = false;
    }
    try {
      for (const device of this.devices()) run('losetup', ['-d', device]);
    } catch {
      // losetup missing or the device already gone
    }
    rmSync(this.directory, { recursive: true, force: true });
  }
}
