// Defaults relative to the project checkout, so the CLI behaves the same from any directory.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// This file is dist/core/paths.js once compiled (src/core/paths.ts under vitest): two levels down.
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_LAYERS_DIR = path.join(PROJECT_ROOT, 'layers');
export const DEFAULT_REPO_DIR = path.join(PROJECT_ROOT, 'repo');
export const SPECS_DIR = path.join(PROJECT_ROOT, 'specs');
export const DEFAULT_SET = 'debian12';
