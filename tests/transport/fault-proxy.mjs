// A TCP proxy in front of the mock server that can be switched between behaving
// (forwarding bytes both ways) and transport faults below the Instant protocol:
// silence, closes and resets at each stage of a WebSocket connection, a trickling
// server, refusing, and (on its TLS port) a TLS handshake that never gets an answer.
import net from 'node:net';
import tls from 'node:tls';

// Faults of the plain port; each applies to connections accepted while it is set.
//   behave           forward everything
//   silent           accept, read, never answer
//   close-accept     FIN right after accept        reset-accept     RST right after accept
//   close-request    read the upgrade, FIN         reset-request    ... RST
//   close-midhs      a partial HTTP answer, FIN    reset-midhs      ... then RST
//   upgraded-silent  the mock's 101, then nothing in either direction (no pongs, no frames)
//   close-upgraded   the mock's 101, FIN once the daemon sends a frame;  reset-upgraded: RST
//   initok-silent    forward until init-ok has passed, then nothing either way
//   close-midframe   the 101, half of the first frame, FIN       reset-midframe  ... RST
//   trickle          one byte of an HTTP answer per second
//   refuse           not listening at all (connect gets RST from the kernel)
// The TLS port knows behave (TLS terminated here, cleartext to the mock) and silent.
export const FAULTS = ['behave', 'silent', 'close-accept', 'reset-accept', 'close-request',
	'reset-request', 'close-midhs', 'reset-midhs',
	'upgraded-silent', 'close-upgraded', 'reset-upgraded', 'initok-silent', 'close-midframe',
	'reset-midframe', 'trickle', 'refuse'];

const PARTIAL_ANSWER = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: webso';

export class FaultProxy {
	constructor({ mockPort, cert, key }) {
		this.mockPort = mockPort;
		this.mode = 'behave';
		this.tlsMode = 'behave';
		this.sockets = new Set();
		this.accepted = {};
		this.tlsServer = tls.createServer({ cert, key }, (clear) => this.pipe(clear));
		this.tlsServer.on('tlsClientError', () => {});
	}

	async start() {
		this.plain = net.createServer((s) => this.onPlain(s));
		this.secure = net.createServer((s) => this.onSecure(s));
		await listen(this.plain, 0);
		await listen(this.secure, 0);
		this.port = this.plain.address().port;
		this.tlsPort = this.secure.address().port;
		return this;
	}

	// Switch the plain port's fault; 'refuse' stops listening, anything else listens again.
	async set(mode) {
		if (!FAULTS.includes(mode)) throw new Error(`unknown fault ${mode}`);
		const listening = this.plain.listening;
		this.mode = mode;
		if (mode === 'refuse' && listening)
			this.plain.close();	/* stops listening now; its callback waits for the sockets */
		else if (mode !== 'refuse' && !listening)
			await listen(this.plain, this.port);	/* a private network namespace: nobody took it */
	}

	// Drop every connection, so the daemon reconnects into the current fault.
	kick() {
		for (const s of this.sockets) s.destroy();
		this.sockets.clear();
	}

	track(s) {
		this.sockets.add(s);
		s.on('error', () => {});
		s.on('close', () => this.sockets.delete(s));
		return s;
	}

	count(mode) {
		this.accepted[mode] = (this.accepted[mode] || 0) + 1;
	}

	onSecure(s) {
		this.track(s);
		this.count(`tls-${this.tlsMode}`);
		if (this.tlsMode === 'behave')
			this.tlsServer.emit('connection', s);
		else
			s.on('data', () => {});
	}

	// Forward a (cleartext) socket to the mock until either side goes.
	pipe(s) {
		const up = this.track(net.connect(this.mockPort, '127.0.0.1'));
		this.track(s);
		s.pipe(up);
		up.pipe(s);
		s.on('close', () => up.destroy());
		up.on('close', () => s.destroy());
	}

	onPlain(s) {
		const mode = this.mode;

		this.track(s);
		this.count(mode);
		switch (mode) {
		case 'behave':
			return this.pipe(s);
		case 'silent':
			return s.on('data', () => {});
		case 'close-accept':
			return s.end();
		case 'reset-accept':
			return s.resetAndDestroy();
		case 'close-request':
		case 'reset-request':
			return s.once('data', () => end(s, mode));
		case 'close-midhs':
		case 'reset-midhs':
			return s.once('data', () => s.write(PARTIAL_ANSWER, () => end(s, mode)));
		case 'trickle': {
			let i = 0;
			const t = setInterval(() => {
				if (s.destroyed || i >= PARTIAL_ANSWER.length) return clearInterval(t);
				s.write(PARTIAL_ANSWER[i++]);
			}, 1000);
			s.on('close', () => clearInterval(t));
			return s.on('data', () => {});
		}
		default:
			return this.relay(s, mode);
		}
	}

	// Forward to the mock, watching what the mock sends, until the fault's moment.
	relay(s, mode) {
		const up = this.track(net.connect(this.mockPort, '127.0.0.1'));
		let head = Buffer.alloc(0), frames = null, frozen = false, upgraded = false;
		const freeze = () => { frozen = true; up.destroy(); };

		s.on('data', (d) => {
			if (upgraded) {
				/* the daemon's first frame: it has taken the 101 */
				upgraded = false;
				freeze();
				return end(s, mode);
			}
			if (!frozen)
				up.write(d);
		});
		s.on('close', () => up.destroy());
		up.on('close', () => { if (!frozen) s.destroy(); });
		up.on('data', (d) => {
			if (frozen)
				return;
			if (frames === null) {
				head = Buffer.concat([head, d]);
				const i = head.indexOf('\r\n\r\n');
				if (i < 0)
					return;
				s.write(head.subarray(0, i + 4));
				frames = Buffer.alloc(0);
				d = head.subarray(i + 4);
				if (mode === 'upgraded-silent')
					return freeze();
				if (mode === 'close-upgraded' || mode === 'reset-upgraded') {
					upgraded = true;
					return;
				}
			}
			frames = Buffer.concat([frames, d]);
			if (mode === 'close-midframe' || mode === 'reset-midframe') {
				const n = frameLength(frames);
				if (frames.length < 2)
					return;
				freeze();
				return s.write(frames.subarray(0, Math.max(1, Math.floor((n || frames.length) / 2))),
					() => end(s, mode));
			}
			/* initok-silent: whole frames pass until the one carrying init-ok */
			for (let n; (n = frameLength(frames)) && frames.length >= n;) {
				const f = frames.subarray(0, n);
				frames = frames.subarray(n);
				s.write(f);
				if (f.includes('"init-ok"'))
					return freeze();
			}
		});
	}

	async stop() {
		this.kick();
		await Promise.all([this.plain, this.secure].filter((x) => x.listening)
			.map((x) => new Promise((r) => x.close(r))));
	}
}

// FIN or RST, as the fault's name says.
function end(s, mode) {
	if (mode.startsWith('reset'))
		s.resetAndDestroy();
	else
		s.end();
}

// Length of the (unmasked, server-to-client) WebSocket frame at the start of b, or 0
// when its header is not complete yet.
function frameLength(b) {
	if (b.length < 2)
		return 0;
	const n = b[1] & 0x7f;
	if (n < 126)
		return 2 + n;
	if (n === 126)
		return b.length < 4 ? 0 : 4 + b.readUInt16BE(2);
	return b.length < 10 ? 0 : 10 + Number(b.readBigUInt64BE(2));
}

function listen(server, port) {
	return new Promise((res, rej) => {
		server.once('error', rej);
		server.listen(port, '127.0.0.1', () => { server.off('error', rej); res(); });
	});
}
