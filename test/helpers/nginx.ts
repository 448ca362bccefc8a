/**
 * A real nginx on 127.0.0.1 for deploy tests (tooling-recipes §4): its own prefix in a tmpdir, a free
 * port, started in the foreground as our child (`-g 'daemon off;'`) and stopped gracefully when the test
 * ends. `-e logs/error.log` keeps it away from /var/log/nginx, so it also runs unprivileged.
 */
import { X509Certificate } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { TestContext } from 'node:test';
import { freePort } from './net.js';
import { requirePeer } from './peers.js';
import { tempDir } from './tmp.js';

export interface Nginx {
  readonly port: number;
  readonly prefix: string;
  /** argv of a reload, for an exec target: `nginx -p P -c conf/nginx.conf -e logs/error.log -s reload`. */
  readonly reload: readonly string[];
  errorLog(): Promise<string>;
}

export interface NginxOptions {
  /** ssl_certificate and ssl_certificate_key: these files must exist before start. */
  readonly certificate: string;
  readonly key: string;
}

/** Starts nginx serving TLS with the given files; undefined when nginx is missing (skipped locally). */
export async function startNginx(t: TestContext, options: NginxOptions): Promise<Nginx | undefined> {
  const bin = requirePeer(t, 'nginx', 'nginx-light');
  if (!bin) return undefined;
  // A port picked free can be taken by a concurrent test before nginx binds it: pick another and retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNginxOnce(t, bin, options);
    } catch (err) {
      if (!/Address already in use/.test(String(err)) || attempt >= 3) throw err;
    }
  }
}

async function startNginxOnce(t: TestContext, bin: string, options: NginxOptions): Promise<Nginx> {
  const prefix = `${await tempDir(t, 'kw-nginx-')}/`;
  for (const d of ['conf', 'logs', 'tmp']) await mkdir(join(prefix, d));
  const port = await freePort();
  await writeFile(
    join(prefix, 'conf', 'nginx.conf'),
    `worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
events { worker_connections 64; }
http {
  access_log logs/access.log;
  client_body_temp_path tmp/client_body;  proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi;  uwsgi_temp_path tmp/uwsgi;  scgi_temp_path tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name _;
    ssl_certificate     ${options.certificate};
    ssl_certificate_key ${options.key};
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  const base = ['-p', prefix, '-c', 'conf/nginx.conf', '-e', 'logs/error.log'];
  const child: ChildProcess = spawn(bin, [...base, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGQUIT'); // graceful stop
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  });
  const errorLog = () => readFile(join(prefix, 'logs', 'error.log'), 'utf8').catch(() => '');
  // Ready when the port serves *our* certificate: a foreign server that took the port first must not count.
  const expected = new X509Certificate(await readFile(options.certificate)).raw;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited at start: ${stderr}${await errorLog()}`);
    if (await handshakes(port, expected))
      return { port, prefix, reload: [bin, ...base, '-s', 'reload'], errorLog };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not accept TLS on 127.0.0.1:${port} within 5 s: ${await errorLog()}`);
}

function handshakes(port: number, expected: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('secureConnect', () => {
      const served = socket.getPeerCertificate().raw;
      socket.destroy();
      resolve(served !== undefined && served.equals(expected));
    });
    socket.once('error', () => resolve(false));
  });
}
