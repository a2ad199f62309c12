// The admin console: GraphiQL from the copies embedded in the binary.
// - The schema is the SDL the binary embeds (/console/schema.graphql), built
//   in the browser with GraphiQL's own graphql-js; the console never sends an
//   introspection query (introspection is off in production).
// - Requests go to /graphql with the browser session (an HttpOnly cookie the
//   page cannot read); there is no token to paste or keep.
// - GraphiQL's storage is this page's memory, not localStorage: tabs, queries
//   and headers are gone when the page closes.
(function () {
  'use strict'
  var root = document.getElementById('graphiql')
  var memory = {}
  var storage = {
    getItem: function (k) { return Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null },
    setItem: function (k, v) { memory[k] = String(v) },
    removeItem: function (k) { delete memory[k] },
    clear: function () { memory = {} },
    get length () { return Object.keys(memory).length }
  }
  function fetcher (params) {
    return fetch('/graphql', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ query: params.query, variables: params.variables, operationName: params.operationName })
    }).then(function (res) { return res.json() })
  }
  // CodeMirror's hidden textareas and scroll areas get what assistive
  // technology and keyboard users need (WCAG 4.1.2, 2.1.1; axe "label" and
  // "scrollable-region-focusable"), as GraphiQL renders them.
  var names = [
    ['.graphiql-query-editor', 'Query editor'],
    ['.graphiql-editor-tool .graphiql-editor:not(.hidden)', 'Variables editor'],
    ['.graphiql-response', 'Response']
  ]
  function label () {
    names.forEach(function (n) {
      document.querySelectorAll(n[0] + ' textarea').forEach(function (el) {
        if (!el.hasAttribute('aria-label')) { el.setAttribute('aria-label', n[1]) }
      })
    })
    document.querySelectorAll('.graphiql-container textarea:not([aria-label])').forEach(function (el) {
      el.setAttribute('aria-label', 'Editor')
    })
    document.querySelectorAll('.graphiql-container .CodeMirror-scroll:not([tabindex="0"])').forEach(function (el) {
      el.setAttribute('tabindex', '0')
    })
  }
  new MutationObserver(label).observe(root, { childList: true, subtree: true })
  document.body.classList.add('graphiql-light')
  var defaultQuery = '# Signed in with your browser session. Try:\n{\n  viewer {\n    roles { role programmeId organisationId }\n  }\n  programmes {\n    id\n    name\n    organisations { name }\n  }\n}\n'
  fetch('/console/schema.graphql', { credentials: 'same-origin' })
    .then(function (res) {
      if (!res.ok) { throw new Error('schema: HTTP ' + res.status) }
      return res.text()
    })
    .then(function (sdl) {
      var schema = GraphiQL.GraphQL.buildSchema(sdl)
      ReactDOM.createRoot(root).render(React.createElement(GraphiQL, {
        fetcher: fetcher,
        schema: schema,
        storage: storage,
        defaultQuery: defaultQuery,
        shouldPersistHeaders: false,
        isHeadersEditorEnabled: false
      }))
    })
    .catch(function (err) {
      root.textContent = String(err)
    })
})()
