// Runs `mcp-scan --bench` compiled to wasm32-wasip1 (dist/mcp-scan.wasm) in Node's V8: the
// scorer's cost inside a wasm VM, without Envoy's per-request noise. Usage:
//   node bench/wasm_scorer.mjs dist/mcp-scan.wasm
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const wasi = new WASI({ version: 'preview1', args: ['mcp-scan', '--bench'], env: {}, preopens: {} });
const module = await WebAssembly.compile(await readFile(process.argv[2]));
const imports = wasi.getImportObject();
// The crate is also the proxy-wasm filter: its `env` imports (proxy_* host calls) are linked
// but never called by mcp-scan, so any function satisfies them.
imports.env = new Proxy({}, { get: () => () => 0 });
const instance = await WebAssembly.instantiate(module, imports);
// Only the command entry point: the reactor export `_initialize` (from the cdylib half of the
// crate) would make WASI.start refuse the instance.
wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
