/**
 * Table output as Consul's CLI writes it, so scripts that parse `consul members` parse ours:
 * - `columnize`: ryanuber/columnize with Consul's settings (fields trimmed, every column but the
 *   last padded to its widest cell, two spaces between columns, no trailing newline);
 * - `alignPairs`: text/tabwriter with (minwidth 0, tabwidth 2, padding 6, ' ') over two columns,
 *   which `kv get -detailed` and `catalog services -tags` use.
 * Widths count code points, as Go's `%-Ns` and columnize do.
 */

/** Space between columnize columns (columnize's default Glue). */
const COLUMN_GLUE = '  ';

/** The tabwriter padding Consul's `kv get -detailed` uses. */
const TABWRITER_PADDING = 6;

function width(text: string): number {
  return [...text].length;
}

/** Aligns rows into columns; every row is one line. */
export function columnize(rows: readonly (readonly string[])[]): string {
  const trimmed = rows.map((row) => row.map((cell) => cell.trim()));
  const widths: number[] = [];
  for (const row of trimmed) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, width(cell));
    });
  }
  return trimmed.map((row) => row.map((cell, column) => (column === row.length - 1
    ? cell : cell + ' '.repeat((widths[column] ?? 0) - width(cell)) + COLUMN_GLUE)).join('')).join('\n');
}

/** Label/value lines, the labels padded to the widest plus the tabwriter's padding. */
export function alignPairs(pairs: readonly (readonly [string, string])[]): string {
  const labelWidth = Math.max(0, ...pairs.map(([label]) => width(label))) + TABWRITER_PADDING;
  return pairs.map(([label, value]) => label + ' '.repeat(labelWidth - width(label)) + value).join('\n');
}
