// PostGraphile 5 as a team would run it: the amber preset with the
// connection-filter plugin, over the bench database, on one port; with
// WORKERS=2 as two node:cluster workers sharing that port.
//
//   DATABASE_URL=postgres://... PORT=15002 WORKERS=2 node server.mjs
import cluster from "node:cluster";
import { createServer } from "node:http";

import { postgraphile } from "postgraphile";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

const workers = Number(process.env.WORKERS ?? "1");
const port = Number(process.env.PORT ?? "15002");

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const preset = {
    extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
    pgServices: [makePgService({ connectionString: process.env.DATABASE_URL, schemas: ["public"] })],
    grafserv: { graphiql: false, watch: false },
  };
  const serv = postgraphile(preset).createServ(grafserv);
  const server = createServer();
  serv.addTo(server);
  server.listen(port, "127.0.0.1", () => console.error(`postgraphile 5 listening on ${port}`));
}
