// Upload a bundle, submit an analysis and watch it to the end over the real
// Honeyphone API, using only the .proto files.  Prints one JSON line with the
// outcome; exits 0 when the stream ended with a terminal event.
//
// usage: node client.js HOST:PORT PROTO_DIR BUNDLE_FILE
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [address, protoDir, bundle] = process.argv.slice(2);
const def = protoLoader.loadSync(path.join(protoDir, 'honeyphone/v1/sandbox.proto'), {
  includeDirs: [protoDir], keepCase: true, longs: Number, enums: String, defaults: true,
});
const v1 = grpc.loadPackageDefinition(def).honeyphone.v1;
const client = new v1.Sandbox(address, grpc.credentials.createInsecure());
const fail = (what, err) => { console.error(`${what}: ${err.code} ${err.details || err.message}`); process.exit(1); };

const upload = client.UploadFirmware((err, ref) => {
  if (err) fail('upload', err);
  const req = {
    firmware_sha256: ref.sha256,
    scenario: { hours: 24, seed: 1 },
    priority: 5,
    labels: { client: 'node', 'fake.seconds': '0.5' },
  };
  client.SubmitAnalysis(req, (err2, analysis) => {
    if (err2) fail('submit', err2);
    const events = [];
    const call = client.WatchAnalysis({ id: analysis.id, from_sequence: 1 });
    call.on('data', (ev) => events.push(ev));
    call.on('error', (e) => fail('watch', e));
    call.on('end', () => {
      client.GetAnalysis({ id: analysis.id }, (err3, a) => {
        if (err3) fail('get', err3);
        console.log(JSON.stringify({
          id: analysis.id, sha256: ref.sha256, size: ref.size, state: a.state, verdict: a.verdict,
          stages: events.map((e) => e.stage), sequences: events.map((e) => e.sequence),
          hours: events.filter((e) => e.device_hours !== undefined && e.device_hours !== null).map((e) => e.device_hours),
        }));
        process.exit(events.length && events[events.length - 1].stage === 'STAGE_FINISHED' ? 0 : 2);
      });
    });
  });
});
const data = fs.readFileSync(bundle);
const CHUNK = 64 * 1024;
for (let i = 0; i < data.length || i === 0; i += CHUNK) {
  upload.write({ filename: i === 0 ? path.basename(bundle) : '', data: data.subarray(i, i + CHUNK) });
  if (data.length === 0) break;
}
upload.end();
