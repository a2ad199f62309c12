package web

import (
	"fmt"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// All the words the learner pages and the console page show are here, keyed,
// so a Welsh catalogue can be added beside English without touching the
// templates or handlers. Templates use {{t "key" args...}}; handlers use
// text(lang, key, args...). Messages with %s/%d take their arguments in the
// order given.
//
// What is not here: the retention statement's sentence (GEN-1) comes from the
// service (domain.RetentionFor) and policy texts come from the programme.
var catalogues = map[string]map[string]string{"en": en}

const defaultLang = "en"

var en = map[string]string{
	"service.name":         "E-learning access",
	"skip":                 "Skip to main content",
	"nav.menu":             "Menu",
	"nav.home":             "Home",
	"nav.policies":         "Policies",
	"nav.details":          "Your details",
	"nav.retention":        "How long we keep your data",
	"nav.data":             "Download your data",
	"nav.console":          "Admin console",
	"nav.signout":          "Sign out",
	"footer.accessibility": "This service aims to meet the Web Content Accessibility Guidelines (WCAG) 2.2 at level AA.",
	"error.prefix":         "Error:",
	"error.title":          "There is a problem",
	"error.hidden":         "Error:",
	"back.home":            "Back to your home page",

	"signin.title":       "Sign in to your e-learning account",
	"signin.lead":        "Use your work email address. We send you to your organisation's sign-in page; we never see your password.",
	"signin.email":       "Work email address",
	"signin.hint":        "For example, the address you use at your council, police force, fire service or college.",
	"signin.button":      "Continue",
	"signin.dev.title":   "Demo people (dev mode)",
	"signin.dev.lead":    "This server runs in dev mode with its own sign-in service. Choose who to be; nothing here is real.",
	"signin.dev.button":  "Sign in as %s",
	"signin.error.empty": "Enter your work email address",

	"home.title":              "Your e-learning account",
	"home.name":               "Name",
	"home.email":              "Work email",
	"home.organisation":       "Organisation",
	"home.group":              "Access group",
	"home.group.none":         "None",
	"home.status":             "Status",
	"home.programme":          "Programme",
	"home.next":               "What to do next",
	"home.next.accept":        "Read and accept the policies to get access to your courses.",
	"home.next.accept.button": "Read the policies",
	"home.next.active":        "You have access to your courses.",
	"home.next.lms":           "Go to your courses",
	"home.next.nolms":         "Your organisation will tell you where to find your courses.",
	"home.next.ended":         "Your access has ended. Nothing else needs doing.",
	"home.change":             "Change",
	"home.change.name":        "name",
	"home.more":               "Your data",
	"home.admin.title":        "You are signed in as an administrator",
	"home.admin.lead":         "Your account has an administrative role in a programme. Use the admin console to read and change what your role allows.",
	"home.admin.button":       "Open the admin console",
	"home.refused.title":      "We could not give you an e-learning account",

	"status.PENDING_ACCEPTANCE": "Waiting for you to accept the policies",
	"status.ACTIVE":             "You have access",
	"status.REMOVAL_SCHEDULED":  "Access ended; your data is due to be erased",
	"status.WITHDRAWN":          "You withdrew consent; access ended",
	"status.ERASED":             "Erased",

	"policies.title":            "Policies to accept",
	"policies.lead":             "You need to accept these before you can use the courses.",
	"policies.none":             "You have accepted every policy you need to.",
	"policies.summary":          "Summary",
	"policies.version":          "Version %s",
	"policies.fulltext":         "Read the full %s",
	"policies.accepted":         "Accepted",
	"policies.declined":         "Declined",
	"policies.accept.legend":    "Your agreement",
	"policies.accept.label":     "I have read and accept the %s",
	"policies.age.label":        "I confirm I am %d years old or older",
	"policies.age.hint":         "The programme's privacy policy does not allow anyone under %d to use the service.",
	"policies.accept.button":    "Accept and continue",
	"policies.optional.title":   "Optional policies",
	"policies.optional.lead":    "You can accept or decline these. Your decision does not change your access.",
	"policies.optional.accept":  "Accept %s",
	"policies.optional.decline": "Decline %s",
	"policies.error.none":       "Select every policy to accept it",
	"policies.error.age":        "Confirm you are %d years old or older",
	"policies.error.stale":      "A policy changed while you were reading it. Read the current version and accept again",
	"policies.error.state":      "Your account cannot accept policies now",

	"access.title": "You have access",
	"access.body":  "You can now use the courses of %s.",
	"access.lms":   "Go to your courses",
	"access.nolms": "Your organisation will tell you where to find your courses.",

	"details.title":         "Your details",
	"details.given":         "Given name",
	"details.family":        "Family name",
	"details.save":          "Save",
	"details.saved":         "Your details have been saved",
	"details.email":         "Work email address",
	"details.email.why":     "You cannot change your email address here. It comes from your organisation's staff account; ask your organisation's e-learning administrator to change it.",
	"details.error.given":   "Enter your given name",
	"details.error.family":  "Enter your family name",
	"details.error.long":    "%s must be 100 characters or fewer",
	"details.error.control": "%s must not contain special control characters",

	"retention.title":      "How long we keep your data",
	"retention.now":        "For your account now",
	"retention.until":      "Kept until",
	"retention.until.open": "No end date",
	"retention.rule":       "Rule",
	"retention.triggers":   "What ends it",
	"retention.lead":       "Under the rules of %s, your data stops being kept when any of these happens.",
	"retention.kept":       "We keep your name, your work email address, your organisation and access group, your decisions on policies, and your course activity.",

	"trigger.WHILE_REGISTERED": "While you are registered: your data is kept for as long as you remain a registered user. There is no end date and no limit on inactivity.",
	"trigger.INACTIVITY":       "If you do not sign in or use a course for %s, your account is scheduled for removal. %s",
	"trigger.CONTRACT_END":     "When the programme's contract with its supplier ends on %s, every account is erased. You will be told in advance.",
	"trigger.LEAVER":           "If your organisation tells us you have left, your access ends at once. %s",
	"trigger.WITHDRAWAL":       "If you withdraw consent, your access ends at once. %s",
	"trigger.ERASURE_REQUEST":  "If you ask for your data to be erased, your access ends at once. %s",

	"timing.approval":       "Your data is then erased once your organisation approves the erasure.",
	"timing.now":            "Your data is then erased straight away.",
	"timing.after":          "Your data is then erased %s later.",
	"timing.grace":          "Your organisation can reverse it within %s; after that your data is erased.",
	"timing.grace.approval": "Your organisation can reverse it within %s; after that your data is erased once your organisation approves.",

	"data.title":  "Download your data",
	"data.lead":   "You can download everything we hold about you as one file: your profile, your organisation and access group, your courses, your decisions on policies, your course activity, your data requests, your sign-ins and the record of changes made to your account.",
	"data.format": "The file is in JSON format, which other systems can read.",
	"data.button": "Download your data",

	"withdraw.title":    "Withdraw consent",
	"withdraw.lead":     "If you withdraw consent:",
	"withdraw.access":   "your access to the courses ends straight away and you are signed out",
	"withdraw.lms":      "the e-learning site is told to suspend your account",
	"withdraw.now":      "your data is erased straight away; only an anonymous record that you accepted and then withdrew is kept",
	"withdraw.after":    "your data is erased %s later",
	"withdraw.approval": "your data is erased once %s approves the erasure; nothing else is done with it meanwhile",
	"withdraw.undo":     "You cannot undo this yourself.",
	"withdraw.button":   "Withdraw consent",
	"withdraw.cancel":   "Cancel",

	"erasure.title":    "Ask for your data to be erased",
	"erasure.lead":     "If you ask for erasure:",
	"erasure.access":   "your access to the courses ends straight away and you are signed out",
	"erasure.now":      "your data is erased straight away; only an anonymous record remains",
	"erasure.approval": "your request goes to %s; your data is erased when they approve it",
	"erasure.button":   "Ask for erasure",
	"erasure.link":     "Ask for your data to be erased",

	"ended.title":         "Your access has ended",
	"ended.withdrawn":     "You withdrew consent. Your access to the courses has ended and you have been signed out.",
	"ended.erasure":       "You asked for your data to be erased. Your access to the courses has ended and you have been signed out.",
	"ended.account":       "Your e-learning account is no longer active, so you cannot use the courses. If you think this is wrong, contact your organisation's e-learning administrator.",
	"ended.session.title": "You have been signed out",
	"ended.session":       "Your session has ended. This happens when you withdraw consent, ask for erasure, leave your organisation, or have not used the service for 12 hours.",
	"ended.signin":        "Sign in again",

	"signedout.title": "You have signed out",
	"signedout.body":  "You have signed out of your e-learning account.",

	"problem.title":         "Sorry, there is a problem",
	"problem.notfound":      "Page not found",
	"problem.notfound.body": "If you typed the web address, check it is correct.",
	"problem.forbidden":     "This request was refused because it did not come from this service's own pages. Go back, reload the page and try again.",
	"problem.internal":      "Sorry, there is a problem with the service. Try again later.",
	"problem.signin":        "We could not sign you in. Start again.",
	"problem.nosso":         "Single sign-on is not available for this email address. Check the address, or ask your organisation's e-learning administrator.",
	"problem.method":        "This page cannot be used that way.",

	"console.title":    "Admin console",
	"console.loading":  "Loading the console…",
	"console.nojs":     "The admin console needs JavaScript. Everything it does is also available through the GraphQL API at /graphql.",
	"console.notadmin": "The admin console is for people with an administrative role in a programme.",
}

// text returns the message for key in lang, formatted with args.
func text(lang, key string, args ...any) string {
	cat := catalogues[lang]
	if cat == nil {
		cat = catalogues[defaultLang]
	}
	msg, ok := cat[key]
	if !ok {
		msg, ok = catalogues[defaultLang][key]
	}
	if !ok {
		return key
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// duration says a rule's duration in words ("365 days", "a year").
func duration(lang string, d time.Duration) string {
	days := int(d / (24 * time.Hour))
	switch {
	case days >= 365 && days%365 == 0:
		if days == 365 {
			return text(lang, "dur.year")
		}
		return text(lang, "dur.years", days/365)
	case days == 1:
		return text(lang, "dur.day")
	case days >= 1:
		return text(lang, "dur.days", days)
	}
	hours := int(d / time.Hour)
	if hours == 1 {
		return text(lang, "dur.hour")
	}
	return text(lang, "dur.hours", hours)
}

func init() {
	for k, v := range map[string]string{
		"dur.year": "a year", "dur.years": "%d years", "dur.day": "a day", "dur.days": "%d days",
		"dur.hour": "an hour", "dur.hours": "%d hours",
	} {
		en[k] = v
	}
}

// date writes a date the GOV.UK way: 24 November 2026.
func date(t time.Time) string { return t.UTC().Format("2 January 2006") }

// timing says when data is erased after a removal is decided.
func timing(lang string, e domain.ErasureTiming) string {
	switch {
	case e.NeedsApproval:
		return text(lang, "timing.approval")
	case e.Delay == 0:
		return text(lang, "timing.now")
	}
	return text(lang, "timing.after", duration(lang, e.Delay))
}

// triggerText says one retention trigger in plain words (GEN-1).
func triggerText(lang string, tr domain.RetentionTrigger) string {
	switch tr.Kind {
	case domain.TriggerInactivity:
		grace := text(lang, "timing.grace", duration(lang, tr.Erasure.Delay))
		if tr.Erasure.NeedsApproval {
			grace = text(lang, "timing.grace.approval", duration(lang, tr.Erasure.Delay))
		}
		return text(lang, "trigger.INACTIVITY", duration(lang, tr.Duration), grace)
	case domain.TriggerContractEnd:
		return text(lang, "trigger.CONTRACT_END", date(*tr.Date))
	case domain.TriggerLeaver, domain.TriggerWithdrawal, domain.TriggerErasureRequest:
		return text(lang, "trigger."+string(tr.Kind), timing(lang, tr.Erasure))
	}
	return text(lang, "trigger."+string(tr.Kind))
}
