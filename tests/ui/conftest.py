from ui_fixtures import browser, fresh_instance, instance, new_page

__all__ = ["browser", "fresh_instance", "instance", "new_page"]
