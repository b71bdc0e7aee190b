// An express 4 app as a legacy backend behind latch: method-override reads
// X-HTTP-Method-Override, ?_method= and a form body's _method on POST, as
// its README shows. Every
// request that reaches a route is recorded; GET /__seen lists them (asked
// directly, never through latch). Prints "listening <port>" when ready.
'use strict';
const express = require('express');
const methodOverride = require('method-override');

const app = express();
const seen = [];
app.get('/__seen', (req, res) => res.json(seen));
app.use(methodOverride('X-HTTP-Method-Override'));
app.use(methodOverride('X-HTTP-Method'));
app.use(methodOverride('X-Method-Override'));
app.use(methodOverride('_method'));
// The body getter method-override's README shows, for HTML forms.
app.use(express.urlencoded({ extended: false }));
app.use(methodOverride((req) => {
  if (req.body && typeof req.body === 'object' && '_method' in req.body) {
    const method = req.body._method;
    delete req.body._method;
    return method;
  }
}));
app.use((req, res, next) => {
  seen.push({ method: req.method, path: req.path, user: req.get('X-Latch-User') || '' });
  next();
});
app.all('*', (req, res) => res.json({ method: req.method, path: req.path }));

const server = app.listen(0, '127.0.0.1', () => {
  console.log('listening ' + server.address().port);
});
