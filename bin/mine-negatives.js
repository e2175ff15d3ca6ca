#!/usr/bin/env node
import { runMineNegatives } from '../dist/src/cli/main.js'

process.exitCode = await runMineNegatives(process.argv.slice(2))
