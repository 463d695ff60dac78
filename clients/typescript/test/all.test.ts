// One process, one server: node --test runs each test file in a process of its own, so the suites are
// modules of this one file, and the server the first of them starts is stopped once all have run.
import { after } from "node:test";

import { stopFootfall } from "./harness.js";
import "./visits.js";
import "./contacts.js";
import "./rules.js";
import "./errors.js";
import "./webhooks.js";
import "./openapi.js";
import "./readme.js";

after(stopFootfall);
