use super::*;

fn field(name: &str, kind: FieldType, nullable: bool) -> Field {
    Field {
        nullable,
        ..Field::test(name, kind)
    }
}

fn with_examples(mut f: Field, examples: &[&str]) -> Field {
    f.evidence.examples = examples.iter().map(|e| (*e).to_owned()).collect();
    f
}

fn schema(fields: Vec<Field>) -> Schema {
    Schema { fields }
}

fn kinds(changes: &[Change]) -> Vec<(ChangeKind, &str, bool)> {
    changes
        .iter()
        .map(|c| (c.change, c.column.as_str(), c.breaking))
        .collect()
}

#[test]
fn widening_is_not_breaking_and_narrowing_is() {
    use FieldType::*;
    let cases = [
        (Integer, Number, ChangeKind::TypeWidened, false),
        (Date, Timestamp, ChangeKind::TypeWidened, false),
        (Boolean, String, ChangeKind::TypeWidened, false),
        (Timestamp, String, ChangeKind::TypeWidened, false),
        (Number, Integer, ChangeKind::TypeNarrowed, true),
        (String, Date, ChangeKind::TypeNarrowed, true),
        (Integer, Date, ChangeKind::TypeChanged, true),
        (Object, String, ChangeKind::TypeChanged, true),
    ];
    for (from, to, kind, breaking) in cases {
        let changes = diff(
            &schema(vec![field("a", from, false)]),
            &schema(vec![field("a", to, false)]),
        );
        assert_eq!(
            kinds(&changes),
            vec![(kind, "a", breaking)],
            "{from:?} → {to:?}"
        );
        assert_eq!(changes[0].from.as_deref(), Some(from.name()));
        assert_eq!(changes[0].to.as_deref(), Some(to.name()));
    }
}

#[test]
fn nullability_and_semantics() {
    let mut email = field("e", FieldType::String, false);
    email.semantic = Some("email".into());
    let plain = field("e", FieldType::String, true);
    assert_eq!(
        kinds(&diff(
            &schema(vec![email.clone()]),
            &schema(vec![plain.clone()])
        )),
        vec![
            (ChangeKind::NullableWidened, "e", false),
            (ChangeKind::SemanticLost, "e", true)
        ]
    );
    assert_eq!(
        kinds(&diff(&schema(vec![plain]), &schema(vec![email.clone()]))),
        vec![
            (ChangeKind::NullableNarrowed, "e", true),
            (ChangeKind::SemanticAdded, "e", false)
        ]
    );
    let mut url = email.clone();
    url.semantic = Some("url".into());
    assert_eq!(
        kinds(&diff(&schema(vec![email]), &schema(vec![url]))),
        vec![(ChangeKind::SemanticChanged, "e", true)]
    );
}

#[test]
fn added_removed_and_renamed() {
    let old = schema(vec![
        field("id", FieldType::Integer, false),
        with_examples(
            field("mail", FieldType::String, false),
            &["a@x.io", "b@y.io"],
        ),
        field("gone", FieldType::Integer, true),
    ]);
    let new = schema(vec![
        field("id", FieldType::Integer, false),
        with_examples(
            field("email", FieldType::String, false),
            &["b@y.io", "a@x.io"],
        ),
        field("fresh", FieldType::Boolean, true),
    ]);
    let changes = diff(&old, &new);
    assert_eq!(
        kinds(&changes),
        vec![
            (ChangeKind::Renamed, "email", true),
            (ChangeKind::Removed, "gone", true),
            (ChangeKind::Added, "fresh", false),
        ]
    );
    assert_eq!(changes[0].from.as_deref(), Some("mail"));
    assert_eq!(
        changes[0].to_string(),
        "column `mail` renamed to `email` (likely: removed and added with matching values)"
    );
}

#[test]
fn date_layouts() {
    let mut iso = field("d", FieldType::Date, false);
    iso.format = Some("%Y-%m-%d".into());
    let mut slashes = iso.clone();
    slashes.format = Some("%Y/%m/%d".into());
    let mut european = iso.clone();
    european.format = Some("%d/%m/%Y".into());
    assert_eq!(
        kinds(&diff(&schema(vec![iso.clone()]), &schema(vec![slashes]))),
        vec![(ChangeKind::FormatChanged, "d", false)]
    );
    assert_eq!(
        kinds(&diff(&schema(vec![iso]), &schema(vec![european]))),
        vec![(ChangeKind::FormatChanged, "d", true)]
    );
}

#[test]
fn a_file_that_fits_the_version_is_the_version() {
    let current = schema(vec![
        field("amount", FieldType::Number, true),
        field("note", FieldType::String, true),
    ]);
    let file = schema(vec![
        field("amount", FieldType::Integer, false),
        field("note", FieldType::Null, true),
    ]);
    let next = evolve(&current, &file, 10, false);
    assert_eq!(next.fingerprint(), current.fingerprint());
    assert!(diff(&current, &next).is_empty());
}

#[test]
fn evidence_widens_the_version() {
    let current = schema(vec![
        field("amount", FieldType::Integer, false),
        field("dropped", FieldType::String, false),
    ]);
    let file = schema(vec![
        field("amount", FieldType::Number, true),
        field("new", FieldType::String, false),
    ]);
    let next = evolve(&current, &file, 10, false);
    assert_eq!(
        kinds(&diff(&current, &next)),
        vec![
            (ChangeKind::TypeWidened, "amount", false),
            (ChangeKind::NullableWidened, "amount", false),
            (ChangeKind::Removed, "dropped", true),
            (ChangeKind::Added, "new", false),
        ]
    );
}

#[test]
fn json_files_may_omit_nullable_fields() {
    let current = schema(vec![
        field("id", FieldType::Integer, false),
        field("discount", FieldType::Number, true),
        field("sku", FieldType::String, false),
    ]);
    let file = schema(vec![field("id", FieldType::Integer, false)]);
    let next = evolve(&current, &file, 3, true);
    assert_eq!(
        kinds(&diff(&current, &next)),
        vec![(ChangeKind::Removed, "sku", true)]
    );
    assert_eq!(evolve(&current, &Schema::default(), 0, true), current);
}

#[test]
fn ambiguous_dates_keep_the_known_layout() {
    let mut known = field("d", FieldType::Date, false);
    known.format = Some("%m/%d/%Y".into());
    let mut seen = known.clone();
    seen.format = Some("%d/%m/%Y".into());
    seen.evidence.formats = vec!["%d/%m/%Y".into(), "%m/%d/%Y".into()];
    let next = evolve(&schema(vec![known.clone()]), &schema(vec![seen]), 1, false);
    assert_eq!(next.fields[0].format, known.format);
}

#[test]
fn fingerprint_ignores_order_and_evidence() {
    let a = field("a", FieldType::Integer, false);
    let b = with_examples(field("b", FieldType::String, true), &["x"]);
    let one = schema(vec![a.clone(), b.clone()]);
    let two = schema(vec![field("b", FieldType::String, true), a.clone()]);
    assert_eq!(one.fingerprint(), two.fingerprint());
    let three = schema(vec![a, field("b", FieldType::String, false)]);
    assert_ne!(one.fingerprint(), three.fingerprint());
}
