#!/usr/bin/env node
import { runHardneg } from '../dist/src/cli/main.js'

process.exitCode = await runHardneg(process.argv.slice(2))
