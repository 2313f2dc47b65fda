#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (npm run build writes dist/).
import '../dist/cli/main.js';
