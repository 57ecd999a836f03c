'use strict';
// `node --require tokenmeter/register app.cjs`, or `require('tokenmeter/register')` first in a CommonJS app.
// require-in-the-middle hooks `require('openai')` and `require('@anthropic-ai/sdk')`: no loader is needed.
// The SDK starter is an ES module without top-level await, which require() loads on Node >= 20.19.
const { startTokenmeter, shutdownTokenmeter } = require('./sdk.js');

startTokenmeter();

module.exports = { shutdownTokenmeter };
