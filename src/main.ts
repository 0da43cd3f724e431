#!/usr/bin/env node
import { runCli } from './cli/cli.js';

// The only place the process exits normally (STYLE §2).
process.exitCode = await runCli(process.argv.slice(2));
