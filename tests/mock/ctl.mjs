// Calls the mock server's control interface from a shell or C test and prints the JSON reply.
// Usage: node ctl.mjs <controlPort> <action> [json-body]     exit 0 if the reply has ok:true, else 1.
import { ctl } from './harness.mjs';

const [port, action, body] = process.argv.slice(2);
if (!port || !action) {
	process.stderr.write('usage: node ctl.mjs <controlPort> <action> [json-body]\n');
	process.exit(2);
}
let parsed = {};
try {
	parsed = body ? JSON.parse(body) : {};
} catch (e) {
	process.stderr.write(`ctl: bad JSON body: ${e.message}\n`);
	process.exit(2);
}
try {
	const r = await ctl(Number(port), action, parsed, { allowError: true });
	process.stdout.write(JSON.stringify(r) + '\n');
	process.exit(r.ok ? 0 : 1);
} catch (e) {
	process.stderr.write(`ctl: ${e.message}\n`);
	process.exit(1);
}
