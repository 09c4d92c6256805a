// Helpers for the hostile tests: raw sockets to the daemon, its peak memory.
import fs from 'node:fs';
import net from 'node:net';

// A raw connection that collects what the daemon sends and notices the close.
export function rawConnect(socketPath) {
	return new Promise((resolve, reject) => {
		const s = net.connect(socketPath);
		const c = { sock: s, data: '', closed: false, error: null };
		c.closedP = new Promise((r) => s.on('close', () => { c.closed = true; r(); }));
		s.setEncoding('utf8');
		s.on('data', (d) => { if (c.data.length < 1 << 20) c.data += d; });
		s.on('error', (e) => { c.error = e; });
		s.once('connect', () => resolve(c));
		s.once('error', reject);
	});
}

// The complete JSON lines received so far.
export function lines(c) {
	return c.data.split('\n').slice(0, -1).filter((l) => l).map((l) => JSON.parse(l));
}

// Write a buffer honouring backpressure; stops quietly when the daemon hangs up.
export async function writeAll(c, buf) {
	if (c.closed || c.sock.destroyed) return false;
	const ok = c.sock.write(buf);
	if (!ok) {
		await new Promise((r) => {
			const done = () => { c.sock.off('drain', done); c.sock.off('close', done); r(); };
			c.sock.on('drain', done);
			c.sock.on('close', done);
		});
	}
	return !c.closed && !c.sock.destroyed;
}

// Peak and current resident memory of a process, in kB, from /proc.
export function memoryOf(pid) {
	const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
	const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1]);
	return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

// Count this process's open fds pointing at sockets of the daemon (for leaks).
export function fdCount(pid) {
	return fs.readdirSync(`/proc/${pid}/fd`).length;
}
