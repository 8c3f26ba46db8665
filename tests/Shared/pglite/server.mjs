// PostgreSQL with pgvector for the tests: an in-memory PGlite (Postgres compiled to WASM)
// behind its wire-protocol socket server on 127.0.0.1, so Npgsql talks to it as to any PostgreSQL.
// Usage: node server.mjs --port N   (prints "READY <port>" once it accepts connections; stops on SIGTERM/SIGINT
// or when its standard input closes, so it never outlives the test run that started it).
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const portArgument = process.argv.indexOf('--port');
const port = portArgument >= 0 ? Number(process.argv[portArgument + 1]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bad --port: ${process.argv[portArgument + 1]}`);
  process.exit(2);
}

const db = await PGlite.create({ extensions: { vector } });
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 8 });
await server.start();
console.log(`READY ${server.getServerConn()}`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop();
    await db.close();
  } finally {
    process.exit(0);
  }
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
