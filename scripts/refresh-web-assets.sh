#!/usr/bin/env bash
# Refreshes the front-end files the binary embeds (internal/web/assets) from
# the npm registry: GOV.UK Frontend's compiled CSS, JS, fonts and images for
# the learner pages, and GraphiQL with the React it needs for the admin
# console. Nothing is loaded from another origin at run time; these copies are
# all the pages use. Change a version below, run this, and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

GOVUK_FRONTEND=6.6.0
GRAPHIQL=3.8.3   # the last major with a UMD build (window.GraphiQL)
REACT=18.3.1     # React 19 ships no UMD build, which GraphiQL 3's needs

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts \
  "govuk-frontend@$GOVUK_FRONTEND" "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
nm="$tmp/node_modules"

dst=internal/web/assets
rm -rf "$dst/govuk" "$dst/console/vendor"
mkdir -p "$dst/govuk" "$dst/console/vendor"
cp "$nm/govuk-frontend/dist/govuk/govuk-frontend.min.css" "$nm/govuk-frontend/dist/govuk/govuk-frontend.min.js" "$dst/govuk/"
cp -r "$nm/govuk-frontend/dist/govuk/assets/fonts" "$nm/govuk-frontend/dist/govuk/assets/images" "$dst/govuk/"
# govuk-frontend ships no licence file; its package.json says MIT (Crown copyright).
cp "$nm/graphiql/graphiql.min.js" "$nm/graphiql/graphiql.min.css" "$dst/console/vendor/"
cp "$nm/graphiql/LICENSE" "$dst/console/vendor/LICENSE-graphiql"
cp "$nm/react/umd/react.production.min.js" "$nm/react-dom/umd/react-dom.production.min.js" "$dst/console/vendor/"
cp "$nm/react/LICENSE" "$dst/console/vendor/LICENSE-react"
# The source maps name files that are not shipped; drop the comments pointing at them.
for f in "$dst"/govuk/*.min.* "$dst"/console/vendor/*.min.*; do
  sed -i -e 's|//# sourceMappingURL=.*$||' -e 's|/\*# sourceMappingURL=.*\*/||' "$f"
done
cat > "$dst/VERSIONS" <<V
govuk-frontend $GOVUK_FRONTEND
graphiql $GRAPHIQL
react $REACT
react-dom $REACT
V
echo "refreshed $dst:"; cat "$dst/VERSIONS"
