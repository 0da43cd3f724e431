/**
 * How values are shown and taken back: text, pretty JSON, base64 for binary, and the exact
 * bytes of what a person typed.
 */
import t from 'tap';
import { bytesOfDraft, decodeBase64, decodeValue, draftOf, encodeBase64, formatBytes, formatsOf, readableText, renderValue } from '../../src/ui/lib/value-format.js';

const base64 = (text: string | Uint8Array): string => Buffer.from(text).toString('base64');

t.test('text, JSON and binary are told apart', async (t) => {
  const text = decodeValue(base64('127.0.0.1:2375'));
  t.same(formatsOf(text), ['text', 'base64']);
  t.equal(renderValue(text, 'text'), '127.0.0.1:2375');
  t.equal(renderValue(text, 'json'), base64('127.0.0.1:2375'), 'an inapplicable format falls back to base64');

  const json = decodeValue(base64('{"replicas":3,"tags":["a"]}'));
  t.same(formatsOf(json), ['json', 'text', 'base64']);
  t.equal(renderValue(json, 'json'), '{\n  "replicas": 3,\n  "tags": [\n    "a"\n  ]\n}');
  t.equal(renderValue(json, 'text'), '{"replicas":3,"tags":["a"]}');

  t.same(formatsOf(decodeValue(base64('42'))), ['text', 'base64'], 'a bare number is text, not a JSON document');
  t.same(formatsOf(decodeValue(base64('{broken'))), ['text', 'base64']);

  const binary = decodeValue(base64(new Uint8Array([0, 1, 2, 0xff, 0xfe])));
  t.same(formatsOf(binary), ['base64'], 'binary is only ever base64');
  t.equal(binary.text, null);
  t.equal(renderValue(binary, 'text'), 'AAEC//4=');

  t.equal(decodeValue(base64('tab\tand\r\nnewline')).text, 'tab\tand\r\nnewline', 'tabs and newlines are text');
  t.equal(decodeValue(base64('esc\u001b[0m')).text, null, 'an escape byte makes it binary');
  t.equal(readableText(new Uint8Array([0xc3, 0x28])), null, 'invalid UTF-8 is binary');
  t.equal(readableText(new TextEncoder().encode('héllo ✓')), 'héllo ✓');
});

t.test('a null Value is an empty value, and malformed base64 is not trusted', async (t) => {
  const empty = decodeValue(null);
  t.equal(empty.isNull, true);
  t.equal(empty.bytes.length, 0);
  t.same(draftOf(empty), { encoding: 'text', text: '' });
  t.equal(decodeBase64('abc'), null, 'unpadded');
  t.equal(decodeBase64('ab$='), null, 'not the alphabet');
  t.same([...(decodeBase64('AAEC//4=') ?? [])], [0, 1, 2, 255, 254]);
});

t.test('drafts round-trip to the exact bytes', async (t) => {
  const binary = new Uint8Array(70_000).map((_, index) => (index * 7) % 256);
  const decoded = decodeValue(encodeBase64(binary));
  t.same(draftOf(decoded).encoding, 'base64');
  const back = bytesOfDraft(draftOf(decoded).text, 'base64');
  t.ok(back.ok && Buffer.from(back.bytes).equals(Buffer.from(binary)), 'a large binary value survives edit → save unchanged');
  const text = bytesOfDraft('héllo', 'text');
  t.ok(text.ok && Buffer.from(text.bytes).toString('utf8') === 'héllo');
  const wrong = bytesOfDraft('not base64!', 'base64');
  t.equal(wrong.ok, false);
  t.match(wrong.ok ? '' : wrong.error, /not valid base64/);
  t.equal(encodeBase64(new Uint8Array()), '');
});

t.test('byte counts read well', async (t) => {
  t.equal(formatBytes(0), '0 bytes');
  t.equal(formatBytes(1), '1 byte');
  t.equal(formatBytes(2048), '2.0 KiB');
  t.equal(formatBytes(3 * 1024 * 1024), '3.0 MiB');
});
