// Experiments page: server-rendered (a run's own report); the script only keeps the header live.
import { subscribe } from "./common.js";

subscribe(() => {});
