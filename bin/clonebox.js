#!/usr/bin/env node
// Thin launcher: oclif loads only the command that runs (lazy, via the manifest).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
