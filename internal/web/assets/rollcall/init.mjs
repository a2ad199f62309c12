// Starts GOV.UK Frontend's components. The pages work without it; with it,
// the error summary takes focus, details and buttons behave as GOV.UK's do.
import { initAll } from '/assets/govuk-frontend.min.js'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()
