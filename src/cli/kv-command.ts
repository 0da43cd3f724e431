/** `conclave kv <get|put|delete|export|import>`: Consul's KV commands. */
import { kvDeleteCommand } from './kv-delete-command.js';
import { kvExportCommand } from './kv-export-command.js';
import { kvGetCommand } from './kv-get-command.js';
import { kvImportCommand } from './kv-import-command.js';
import { kvPutCommand } from './kv-put-command.js';
import { dispatcher } from './subcommands.js';

/** `conclave kv <subcommand>`. */
export const kvCommand = dispatcher('kv', 'Interacts with the key-value store.', {
  delete: { run: kvDeleteCommand, synopsis: 'Removes data from the KV store' },
  export: { run: kvExportCommand, synopsis: 'Exports a tree from the KV store as JSON' },
  get: { run: kvGetCommand, synopsis: 'Retrieves or lists data from the KV store' },
  import: { run: kvImportCommand, synopsis: 'Imports a tree stored as JSON to the KV store' },
  put: { run: kvPutCommand, synopsis: 'Sets or updates data in the KV store' },
});
