// The reference packages of the MCAP tests, from this folder's node_modules (installed by
// scripts/install-deps.sh). A missing one ends the test with a FAIL line, never a skip.
"use strict";
const path = require("path");

function load(name) {
  try {
    return require(path.join(__dirname, "node_modules", name));
  } catch (e) {
    console.log(`FAIL ${name} is not installed in ${__dirname}/node_modules ` +
                `(run scripts/install-deps.sh): ${e.message}`);
    process.exit(1);
  }
}

module.exports = { load };
