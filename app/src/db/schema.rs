// @generated automatically by Diesel CLI.

diesel::table! {
    projects (id) {
        id -> Integer,
        name -> Text,
        path -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        project_id -> Integer,
        name -> Text,
        agent -> Text,
        state -> Text,
        error_message -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        state_changed_at -> BigInt,
    }
}

diesel::joinable!(sessions -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(projects, sessions,);
