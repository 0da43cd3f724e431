/** FNV-1a over bytes or a string: a cheap, stable 32-bit fingerprint for simulation checks. */
export function fnv1a(input: Uint8Array | string): number {
  let hash = 0x811c9dc5;
  if (typeof input === 'string') {
    for (let i = 0; i < input.length; i++) {
      hash ^= input.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
  } else {
    for (let i = 0; i < input.length; i++) {
      hash ^= input[i] as number;
      hash = Math.imul(hash, 0x01000193);
    }
  }
  return hash >>> 0;
}

/** Mixes a value into a running hash (order matters). */
export function fnvMix(hash: number, value: number): number {
  let h = hash;
  for (let shift = 0; shift < 32; shift += 8) {
    h ^= (value >>> shift) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
