"""Operations on a stack, local or deployed: the sweep and the replay (README "When a task fails")."""
