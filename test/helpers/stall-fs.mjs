// A real FUSE filesystem that can be made to hang, like a paused NFS server: `node stall-fs.mjs DIR`
// mounts it on DIR (root only) and prints `mounted`; every name in its root is an empty directory.
// SIGSTOP this process and every lookup on DIR waits in the kernel until SIGCONT, as on a hung
// network mount. Plain JavaScript over /dev/fuse (the FUSE protocol, no libfuse). Attributes are never
// cached, so each lookup asks.
import { spawnSync } from 'node:child_process';
import { openSync, readSync, writeSync } from 'node:fs';

const dir = process.argv[2];
const fuse = openSync('/dev/fuse', 'r+');
// `mount -i` calls mount(2) itself even where fuse3 installed a mount.fuse helper (podman brings it), which
// would run the source as a program; the kernel takes the connection from fd 3.
const mounted = spawnSync('mount', ['-i', '-t', 'fuse', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0,allow_other', 'dw-stall', dir], {
  stdio: ['ignore', 'inherit', 'inherit', fuse],
});
if (mounted.status !== 0) process.exit(1);
process.stdout.write('mounted\n');

const OP = { LOOKUP: 1, FORGET: 2, GETATTR: 3, STATFS: 17, GETXATTR: 22, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, ACCESS: 34, INTERRUPT: 36, DESTROY: 38, BATCH_FORGET: 42 };
const ENOENT = 2;
const ENOSYS = 38;
const ENODATA = 61;
const names = new Map(); // name → inode (1 is the root)

function reply(unique, error, body = Buffer.alloc(0)) {
  const header = Buffer.alloc(16);
  header.writeUInt32LE(16 + body.length, 0);
  header.writeInt32LE(-error, 4);
  header.writeBigUInt64LE(unique, 8);
  writeSync(fuse, Buffer.concat([header, body]));
}

/** struct fuse_attr (88 bytes): a directory owned by root, mode 0755. */
function attr(ino) {
  const a = Buffer.alloc(88);
  a.writeBigUInt64LE(BigInt(ino), 0);
  a.writeUInt32LE(0o040755, 60);
  a.writeUInt32LE(2, 64);
  a.writeUInt32LE(4096, 80);
  return a;
}

const buffer = Buffer.alloc(1024 * 1024 + 4096);
for (;;) {
  let length;
  try {
    length = readSync(fuse, buffer, 0, buffer.length, null);
  } catch (error) {
    if (error.code === 'ENODEV') process.exit(0); // unmounted
    if (error.code === 'EINTR' || error.code === 'EAGAIN' || error.code === 'ENOENT') continue;
    throw error;
  }
  const opcode = buffer.readUInt32LE(4);
  const unique = buffer.readBigUInt64LE(8);
  const node = Number(buffer.readBigUInt64LE(16));
  const body = buffer.subarray(40, length);
  switch (opcode) {
    case OP.INIT: {
      const out = Buffer.alloc(64);
      out.writeUInt32LE(7, 0);
      out.writeUInt32LE(31, 4);
      out.writeUInt32LE(body.readUInt32LE(8), 8); // max_readahead as offered
      out.writeUInt16LE(16, 16);
      out.writeUInt16LE(12, 18);
      out.writeUInt32LE(4096, 20); // max_write
      out.writeUInt32LE(1, 24); // time_gran
      reply(unique, 0, out);
      break;
    }
    case OP.LOOKUP: {
      const name = body.subarray(0, body.indexOf(0)).toString();
      if (node !== 1) {
        reply(unique, ENOENT);
        break;
      }
      if (!names.has(name)) names.set(name, names.size + 2);
      const out = Buffer.alloc(40);
      out.writeBigUInt64LE(BigInt(names.get(name)), 0);
      reply(unique, 0, Buffer.concat([out, attr(names.get(name))])); // entry and attributes valid for 0 s
      break;
    }
    case OP.GETATTR:
      reply(unique, 0, Buffer.concat([Buffer.alloc(16), attr(node)]));
      break;
    case OP.OPENDIR:
      reply(unique, 0, Buffer.alloc(16));
      break;
    case OP.READDIR: // empty: end of directory at once
    case OP.RELEASEDIR:
    case OP.ACCESS:
      reply(unique, 0);
      break;
    case OP.STATFS:
      reply(unique, 0, Buffer.alloc(80));
      break;
    case OP.GETXATTR:
      reply(unique, ENODATA);
      break;
    case OP.FORGET:
    case OP.BATCH_FORGET:
    case OP.INTERRUPT:
      break; // no reply expected
    case OP.DESTROY:
      reply(unique, 0);
      process.exit(0);
    default:
      reply(unique, ENOSYS);
  }
}
