// Starts Portkey's open-source gateway (the pinned @portkey-ai/gateway of package.json) exactly as its
// `start-server.js` does, on 127.0.0.1 only: start-server.js takes --port=N and --headless but no host and
// listens on every interface, so the one listen() it makes is given the loopback address here.
// Usage: node server.mjs --port=8787 --headless
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    if (args.length === 1 || typeof args[1] === 'function') {
      args.splice(1, 0, '127.0.0.1');
    } else if (args[1] === undefined || args[1] === null) {
      args[1] = '127.0.0.1';
    }
  }
  return listen.apply(this, args);
};

await import('./node_modules/@portkey-ai/gateway/build/start-server.js');
