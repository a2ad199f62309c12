package domain

import "time"

// ErasureTiming says when a learner's data is erased once a removal is
// decided: at once, after a delay, or when the controller approves (ONC-5).
type ErasureTiming struct {
	NeedsApproval bool
	Delay         time.Duration // 0: at once (ignored when NeedsApproval)
}

// WithdrawalErasure is what withdrawing consent leads to under s (CTL-8,
// ONC-5, ONC-8): lifecycle's withdraw decides by the same two settings.
func WithdrawalErasure(s RuleSettings) ErasureTiming {
	if s.ErasureNeedsApproval {
		return ErasureTiming{NeedsApproval: true}
	}
	return ErasureTiming{Delay: s.WithdrawalErasureDelay}
}

// RequestedErasure is what asking for erasure leads to under s (CTL-11,
// GEN-4: an explicit request does not wait; ONC-5: unless the controller
// must approve).
func RequestedErasure(s RuleSettings) ErasureTiming {
	return ErasureTiming{NeedsApproval: s.ErasureNeedsApproval}
}

// TriggerKind names something that ends the keeping of a learner's data.
type TriggerKind string

const (
	TriggerContractEnd    TriggerKind = "CONTRACT_END"     // CTL-6
	TriggerInactivity     TriggerKind = "INACTIVITY"       // CTL-7, GEN-5
	TriggerWithdrawal     TriggerKind = "WITHDRAWAL"       // CTL-8, ONC-8
	TriggerLeaver         TriggerKind = "LEAVER"           // CTL-9
	TriggerErasureRequest TriggerKind = "ERASURE_REQUEST"  // CTL-11
	TriggerRegistered     TriggerKind = "WHILE_REGISTERED" // ONC-6
	TriggerAutomatedGrace TriggerKind = "RECONSIDERATION"  // GEN-4
)

// RetentionTrigger is one rule in force that can end the keeping of a
// learner's data, with its parameters (GEN-1: every trigger, stated).
type RetentionTrigger struct {
	Kind     TriggerKind
	Rule     string
	Duration time.Duration // inactivity limit, leaver grace, reconsideration grace
	Date     *time.Time    // contract end
	Erasure  ErasureTiming
}

// RetentionTriggers lists the triggers in force under s, in the order a
// learner would meet them.
func RetentionTriggers(s RuleSettings) []RetentionTrigger {
	var out []RetentionTrigger
	if s.InactivityLimit == nil && s.ContractEndsAt == nil {
		out = append(out, RetentionTrigger{Kind: TriggerRegistered, Rule: "ONC-6"})
	}
	if s.InactivityLimit != nil {
		out = append(out, RetentionTrigger{Kind: TriggerInactivity, Rule: "CTL-7", Duration: *s.InactivityLimit,
			Erasure: ErasureTiming{NeedsApproval: s.ErasureNeedsApproval, Delay: s.AutomatedRemovalGrace}})
	}
	if s.ContractEndsAt != nil {
		end := *s.ContractEndsAt
		out = append(out, RetentionTrigger{Kind: TriggerContractEnd, Rule: "CTL-6", Date: &end})
	}
	out = append(out,
		RetentionTrigger{Kind: TriggerLeaver, Rule: "CTL-9", Duration: s.LeaverGracePeriod,
			Erasure: ErasureTiming{NeedsApproval: s.ErasureNeedsApproval, Delay: s.LeaverGracePeriod}},
		RetentionTrigger{Kind: TriggerWithdrawal, Rule: "CTL-8", Erasure: WithdrawalErasure(s)},
		RetentionTrigger{Kind: TriggerErasureRequest, Rule: "CTL-11", Erasure: RequestedErasure(s)},
	)
	return out
}
