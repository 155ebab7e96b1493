//! Status conditions, computed purely from render problems (or a decode error): `Accepted` (the
//! spec is valid), `ResolvedRefs` (every referenced Secret and resource exists) and `Ready` (both,
//! and the config holding the resource is published).

use switchboard_crds::render::RenderError;
use switchboard_crds::resources::Condition;

pub const ACCEPTED: &str = "Accepted";
pub const RESOLVED_REFS: &str = "ResolvedRefs";
pub const READY: &str = "Ready";
/// The reason of every condition of an object that does not decode into its Rust type.
pub const INVALID_OBJECT: &str = "InvalidObject";

/// What the operator knows about one resource after a reconcile.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub problems: &'a [RenderError],
    /// Why the resource's current entry is not in the published config, if it is not.
    pub unpublished: Option<&'a str>,
}

/// The desired conditions, keeping each previous `lastTransitionTime` whose status is unchanged.
pub fn desired(observation: Observation<'_>, previous: &[Condition], now: &str) -> Vec<Condition> {
    let (reference, spec): (Vec<&RenderError>, Vec<&RenderError>) =
        observation.problems.iter().partition(|e| e.reason.is_reference());
    let accepted = summary(&spec)
        .map_or_else(|| (true, ACCEPTED.to_owned(), "spec is valid".to_owned()), |s| (false, s.0, s.1));
    let resolved = summary(&reference).map_or_else(
        || (true, RESOLVED_REFS.to_owned(), "all references resolved".to_owned()),
        |s| (false, s.0, s.1),
    );
    let ready = if !accepted.0 {
        (false, accepted.1.clone(), accepted.2.clone())
    } else if !resolved.0 {
        (false, resolved.1.clone(), resolved.2.clone())
    } else if let Some(why) = observation.unpublished {
        (false, "Pending".to_owned(), format!("not in the gateway config yet: {why}"))
    } else {
        (true, "Published".to_owned(), "in the gateway config".to_owned())
    };
    [(ACCEPTED, accepted), (RESOLVED_REFS, resolved), (READY, ready)]
        .into_iter()
        .map(|(type_, (ok, reason, message))| {
            let status = if ok { "True" } else { "False" }.to_owned();
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .or_else(|| Some(now.to_owned()));
            Condition {
                type_: type_.to_owned(),
                status,
                reason,
                message,
                observed_generation: observation.generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The conditions of an object that does not decode: not accepted, references unchecked, not
/// ready, each with the decode error. The previous conditions cannot be read, so every
/// `lastTransitionTime` is `now`.
pub fn undecodable(generation: Option<i64>, error: &str, now: &str) -> Vec<Condition> {
    [(ACCEPTED, "False"), (RESOLVED_REFS, "Unknown"), (READY, "False")]
        .into_iter()
        .map(|(type_, status)| Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: INVALID_OBJECT.to_owned(),
            message: format!("the object does not decode: {error}"),
            observed_generation: generation,
            last_transition_time: Some(now.to_owned()),
        })
        .collect()
}

/// The first problem's reason and every problem's text, for a condition.
fn summary(problems: &[&RenderError]) -> Option<(String, String)> {
    let first = problems.first()?;
    let message =
        problems.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
    Some((first.reason.as_str().to_owned(), message))
}

/// Whether the operator's conditions differ in anything but timestamps. Conditions of other
/// writers (the gateway's `Exhausted`) are theirs: the list is keyed by type under server-side apply.
pub fn changed(current: &[Condition], desired: &[Condition]) -> bool {
    let own = |c: &&Condition| [ACCEPTED, RESOLVED_REFS, READY].contains(&c.type_.as_str());
    let strip = |conditions: Vec<&Condition>| -> Vec<(String, String, String, String, Option<i64>)> {
        conditions
            .into_iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                    c.observed_generation,
                )
            })
            .collect()
    };
    strip(current.iter().filter(own).collect()) != strip(desired.iter().filter(own).collect())
}

#[cfg(test)]
mod tests {
    use switchboard_crds::render::RenderErrorReason;

    use super::*;

    fn problem(reason: RenderErrorReason) -> RenderError {
        RenderError {
            kind: "Tenant",
            namespace: "sb".into(),
            name: "t".into(),
            field: "spec.apiKeys[0].secretRef".into(),
            reason,
            message: "Secret sb/k not found".into(),
        }
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn a_clean_published_resource_is_ready() {
        let conditions =
            desired(Observation { generation: Some(3), problems: &[], unpublished: None }, &[], "T1");
        for c in &conditions {
            assert_eq!((c.status.as_str(), c.observed_generation), ("True", Some(3)), "{c:?}");
        }
    }

    #[test]
    fn a_missing_secret_fails_resolved_refs_and_ready_with_its_reason() {
        let problems = [problem(RenderErrorReason::SecretNotFound)];
        let conditions =
            desired(Observation { generation: Some(1), problems: &problems, unpublished: None }, &[], "T1");
        assert_eq!(find(&conditions, ACCEPTED).status, "True");
        let resolved = find(&conditions, RESOLVED_REFS);
        assert_eq!((resolved.status.as_str(), resolved.reason.as_str()), ("False", "SecretNotFound"));
        assert!(resolved.message.contains("spec.apiKeys[0].secretRef: Secret sb/k not found"));
        assert_eq!(find(&conditions, READY).reason, "SecretNotFound");
    }

    #[test]
    fn an_undecodable_object_is_not_ready_with_the_decode_error() {
        let conditions = undecodable(Some(4), "invalid type: string \"x\", expected u8", "T1");
        let ready = find(&conditions, READY);
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", INVALID_OBJECT));
        assert!(ready.message.contains("expected u8"), "{}", ready.message);
        assert_eq!(find(&conditions, ACCEPTED).status, "False");
        assert_eq!(find(&conditions, RESOLVED_REFS).status, "Unknown");
        assert!(conditions.iter().all(|c| c.observed_generation == Some(4)));
    }

    #[test]
    fn transition_times_move_only_when_status_changes() {
        let first = desired(Observation { generation: Some(1), problems: &[], unpublished: None }, &[], "T1");
        let same =
            desired(Observation { generation: Some(1), problems: &[], unpublished: None }, &first, "T2");
        assert!(!changed(&first, &same));
        assert_eq!(find(&same, READY).last_transition_time.as_deref(), Some("T1"));
        let problems = [problem(RenderErrorReason::Conflict)];
        let broken =
            desired(Observation { generation: Some(2), problems: &problems, unpublished: None }, &same, "T3");
        assert!(changed(&same, &broken));
        let mut with_gateway_condition = same.clone();
        with_gateway_condition.push(Condition { type_: "Exhausted".into(), ..broken[0].clone() });
        assert!(!changed(&with_gateway_condition, &same), "other writers' conditions are ignored");
        assert_eq!(find(&broken, ACCEPTED).last_transition_time.as_deref(), Some("T3"));
        assert_eq!(find(&broken, RESOLVED_REFS).last_transition_time.as_deref(), Some("T1"));
    }

    #[test]
    fn an_unpublished_resource_is_pending_with_the_reason() {
        let observation = Observation { generation: Some(1), problems: &[], unpublished: Some("Too long") };
        let ready = find(&desired(observation, &[], "T1"), READY).clone();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "Pending"));
        assert!(ready.message.ends_with("Too long"), "{}", ready.message);
    }
}
