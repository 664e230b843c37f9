from accounts.selectors import workspaces_for_user


def workspaces(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"my_workspaces": workspaces_for_user(user=user)}
