// Loaded into every Node a test starts with NODE_OPTIONS=--require <this file>: no connection may leave
// the host. A connection to anything but loopback is written to $OFFLINE_LOG and destroyed.
const fs = require("node:fs");
const net = require("node:net");

const loopback = new Set(["127.0.0.1", "::1", "localhost", undefined, null, ""]);
const connect = net.Socket.prototype.connect;

net.Socket.prototype.connect = function (...args) {
  // net.connect passes its normalised arguments as one array: [options, callback].
  let options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof options !== "object" || options === null) options = { port: args[0], host: args[1] };
  if (options.path === undefined && !loopback.has(options.host)) {
    fs.appendFileSync(process.env.OFFLINE_LOG, `connect ${options.host} (node pid ${process.pid})\n`);
    // Destroyed on the next tick, once the caller listens for the error.
    const refused = new Error(`the tests allow no connection beyond this host (${options.host})`);
    process.nextTick(() => this.destroy(refused));
    return this;
  }
  return connect.apply(this, args);
};
