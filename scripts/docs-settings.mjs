// Rewrites the server settings table in docs/configuration.md from the settings table in
// src/server/settings.ts (run `npm run build` first; `npm run docs:settings` does both).
import { readFileSync, writeFileSync } from 'node:fs';
import { withSettingsTable } from '../dist/src/server/settings.js';

const page = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(page, withSettingsTable(readFileSync(page, 'utf8')));
