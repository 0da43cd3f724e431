/**
 * KV entries read back from `/v1/kv/…` without losing digits: `Flags` is a uint64 (the lock flag
 * 3304740253564472344 is past 2^53), so the body goes through the lossless JSON reader rather
 * than JSON.parse. Values are decoded from base64 into bytes.
 */
import { arrayField, isJsonObject, matchFields, stringField, uint64Field, unexpectedType } from '../http/json-fields.js';
import { readJson } from '../http/json-reader.js';
import { ApiError } from './http-client.js';
import type { HttpAnswer } from './http-client.js';

/** One KV entry (Consul's api.KVPair). */
export interface KvPair {
  readonly key: string;
  readonly flags: bigint;
  readonly value: Buffer;
  readonly session: string;
  readonly lockIndex: bigint;
  readonly createIndex: bigint;
  readonly modifyIndex: bigint;
}

const PAIR_FIELDS = ['Key', 'Flags', 'Value', 'Session', 'LockIndex', 'CreateIndex', 'ModifyIndex'] as const;

/** The entries of a 200 answer of a KV read. */
export function decodeKvPairs(answer: HttpAnswer): KvPair[] {
  try {
    const items = arrayField(readJson(answer.body.toString('utf8')), 'KVPairs', 'api.KVPairs') ?? [];
    return items.map((item) => {
      if (!isJsonObject(item)) throw unexpectedType(item, 'KVPairs', 'api.KVPair');
      const fields = matchFields(item, PAIR_FIELDS);
      return {
        key: stringField(fields.get('Key'), 'KVPair.Key') ?? '',
        flags: uint64Field(fields.get('Flags'), 'KVPair.Flags') ?? 0n,
        value: Buffer.from(stringField(fields.get('Value'), 'KVPair.Value') ?? '', 'base64'),
        session: stringField(fields.get('Session'), 'KVPair.Session') ?? '',
        lockIndex: uint64Field(fields.get('LockIndex'), 'KVPair.LockIndex') ?? 0n,
        createIndex: uint64Field(fields.get('CreateIndex'), 'KVPair.CreateIndex') ?? 0n,
        modifyIndex: uint64Field(fields.get('ModifyIndex'), 'KVPair.ModifyIndex') ?? 0n,
      };
    });
  } catch (error) {
    throw new ApiError((error as Error).message, { cause: error });
  }
}

/** A JSON array of strings (`?keys`). */
export function decodeKeys(answer: HttpAnswer): string[] {
  let keys: unknown;
  try {
    keys = JSON.parse(answer.body.toString('utf8'));
  } catch (error) {
    throw new ApiError((error as Error).message, { cause: error });
  }
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) throw new ApiError('invalid keys list in the response');
  return keys;
}
